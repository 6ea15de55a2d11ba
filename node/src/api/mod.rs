//! The local control API: how `baro` commands (and later any UI) talk to the
//! running node, since sled lets only one process open the database.
//!
//! A Unix socket `control.sock` in the node's home, owner-only; one JSON
//! request line, one JSON response line per connection.

mod client;
mod operator;
mod protocol;
mod server;
mod views;

pub use client::{ApiError, request, stream};
pub use operator::{ConsoleView, EnrolledView, SecretText};
pub use protocol::{MAX_LINE, Request, Response};
pub use server::{ControlSocket, bind, dispatch, dispatch_in_home};
pub use views::{
    AttachmentView, DeviceView, MessageView, People, PersonView, PreviewView, Progress,
    ReceiptView, RoomInfo, Sent,
};

/// The socket's file name inside the home.
pub const SOCKET_NAME: &str = "control.sock";
