//! Waiting helpers for tests, driven by node events.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use baro_node::store::{Home, SledStore};
use libp2p::Multiaddr;

use baro_node::api::MessageView;
pub use baro_node::testing::*;
use baro_node::{Node, NodeEvent};
use tokio::sync::broadcast;

/// The org unit of [`TestAgency::member`] devices: their department room.
pub const DIV: &str = "MOIS/Digital Government Bureau";

/// Waits for the first event matching `pick`, or fails after [`SETTLE`].
pub async fn wait_for<T>(
    events: &mut broadcast::Receiver<NodeEvent>,
    what: &str,
    mut pick: impl FnMut(&NodeEvent) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(SETTLE, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => {
                    panic!("node stopped while waiting for {what}")
                }
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Waits for a message with `text` among `node`'s events.
pub async fn wait_for_message(
    events: &mut broadcast::Receiver<NodeEvent>,
    text: &str,
) -> MessageView {
    wait_for(events, text, |event| match event {
        NodeEvent::Message(message) if message.text == text => Some(message.clone()),
        _ => None,
    })
    .await
}

/// Sends, retrying while the room's first key is still on its way.
pub async fn send(node: &Node, room: &str, text: &str) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        match node.handle().send(room, text).await {
            Ok(_) => return,
            Err(e)
                if tokio::time::Instant::now() < deadline
                    && e.to_string().contains("holds no key") =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("send failed: {e}"),
        }
    }
}

/// Kim, Lee and Choi of the same division, connected through Kim's node.
pub async fn three_connected_officials(seed: u64) -> [Node; 3] {
    let mut agency = TestAgency::new(seed);
    let kim_credentials = agency.member("kim");
    let kim = agency.spawn(kim_credentials, &[]);
    let address = listen_address(&kim).await.expect("listening");
    let lee_credentials = agency.member("lee");
    let lee = agency.spawn(lee_credentials, std::slice::from_ref(&address));
    let choi_credentials = agency.member("choi");
    let choi = agency.spawn(choi_credentials, std::slice::from_ref(&address));
    for node in [&kim, &lee, &choi] {
        node.handle()
            .wait_for_peers(2, SETTLE)
            .await
            .expect("peers");
    }
    [kim, lee, choi]
}

/// Lee's device on a sled store under `dir`, bootstrapping from Kim at
/// `address`, receives `text` from Kim, stops, and starts again on the same
/// store; returns the restarted node.
pub async fn lee_restarted_on_sled(
    agency: &mut TestAgency,
    kim: &Node,
    address: &Multiaddr,
    dir: &Path,
    text: &str,
) -> Node {
    let credentials = agency.member("lee");
    let open_store = || {
        let home =
            Home::open_or_create_with(&dir.join("lee"), &crate::test_unlock()).expect("home");
        Arc::new(SledStore::open(home).expect("sled"))
    };
    let bootstrap = std::slice::from_ref(address);
    let lee = agency.spawn_with_store(credentials.clone(), bootstrap, open_store());
    lee.handle().wait_for_peers(1, SETTLE).await.expect("peer");
    let mut events = lee.handle().events();
    send(kim, DIV, text).await;
    wait_for_message(&mut events, text).await;
    lee.shutdown().await;
    agency.spawn_with_store(credentials, bootstrap, open_store())
}
