//! The control socket client used by `baro` commands (blocking, with timeouts).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::{MAX_LINE, Request, Response, SOCKET_NAME};

/// How long a command waits for the node.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why the node could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No node answers on this home.
    #[error("no node is running on {0}: start it with `baro run`")]
    NotRunning(String),
    /// Talking to the node failed.
    #[error("the node did not answer properly: {0}")]
    Io(#[from] std::io::Error),
    /// The node's answer is not understood.
    #[error("the node's answer is not understood: {0}")]
    BadResponse(String),
    /// The node answered with an error.
    #[error("the node says: {0}")]
    Node(String),
}

/// Sends `request` to the node running on `home` and returns its answer.
pub fn request(home: &Path, request: &Request) -> Result<Response, ApiError> {
    let path = home.join(SOCKET_NAME);
    let mut stream =
        UnixStream::connect(&path).map_err(|_| ApiError::NotRunning(home.display().to_string()))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut line = serde_json::to_vec(request).map_err(|e| ApiError::BadResponse(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(stream.take(MAX_LINE as u64)).read_line(&mut answer)?;
    match serde_json::from_str::<Response>(&answer) {
        Ok(Response::Error(message)) => Err(ApiError::Node(message)),
        Ok(response) => Ok(response),
        Err(e) => Err(ApiError::BadResponse(e.to_string())),
    }
}

/// Sends `request` (a stream, such as [`Request::Watch`]) and calls `each`
/// with every response until it returns `false` or the node closes the stream.
pub fn stream(
    home: &Path,
    request: &Request,
    mut each: impl FnMut(Response) -> bool,
) -> Result<(), ApiError> {
    let path = home.join(SOCKET_NAME);
    let mut stream =
        UnixStream::connect(&path).map_err(|_| ApiError::NotRunning(home.display().to_string()))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut line = serde_json::to_vec(request).map_err(|e| ApiError::BadResponse(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let reader = BufReader::new(stream);
    for line in reader.lines() {
        let line = line?;
        if line.len() > MAX_LINE {
            return Err(ApiError::BadResponse("line too long".into()));
        }
        match serde_json::from_str::<Response>(&line) {
            Ok(Response::Error(message)) => return Err(ApiError::Node(message)),
            Ok(response) => {
                if !each(response) {
                    return Ok(());
                }
            }
            Err(e) => return Err(ApiError::BadResponse(e.to_string())),
        }
    }
    Ok(())
}
