//! Files the page attaches: the browser sends the bytes, they are written
//! owner-only to a fresh directory under `HOME/ui-uploads/` with their
//! name, and sent with the control API's `send_file` (the node reads and
//! encrypts them), then removed.

use std::path::Path;

use baro_node::Handle;
use baro_node::api::{Request, Response, dispatch};
use baro_node::wire::MAX_FILE_NAME_LEN;

/// The uploads directory's name in the home.
pub const UPLOADS: &str = "ui-uploads";

/// The file name the page gave, percent-decoded, if it is one plain name.
pub fn file_name(encoded: &str) -> Result<String, String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = encoded.get(i + 1..i + 3).ok_or("a bad file name")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "a bad file name")?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    let name = String::from_utf8(out).map_err(|_| "a file name that is not UTF-8")?;
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= MAX_FILE_NAME_LEN
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if plain {
        Ok(name)
    } else {
        Err(format!(
            "a file needs a plain name of 1 to {MAX_FILE_NAME_LEN} bytes"
        ))
    }
}

/// Writes `bytes` as `name` in a fresh owner-only directory under
/// `home/ui-uploads`, sends it to `room`, and removes it.
pub async fn send(handle: &Handle, home: &Path, room: &str, name: &str, bytes: &[u8]) -> Response {
    use std::os::unix::fs::DirBuilderExt;
    let mut random = [0u8; 16];
    if getrandom::fill(&mut random).is_err() {
        return Response::Error("no randomness for an upload directory".into());
    }
    let dir = home.join(UPLOADS).join(hex::encode(random));
    let written = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .and_then(|()| crate::write_owner_only(&dir.join(name), ""))
        .and_then(|()| {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(dir.join(name))?;
            file.write_all(bytes)?;
            file.sync_all()
        });
    let response = match written {
        Ok(()) => {
            let request = Request::SendFile {
                room: room.to_string(),
                path: dir.join(name).display().to_string(),
                caption: String::new(),
                keep_metadata: false,
            };
            dispatch(request.normalized(), handle).await
        }
        Err(e) => Response::Error(format!("cannot keep the upload: {e}")),
    };
    let _ = std::fs::remove_dir_all(&dir);
    response
}

/// Image types shown inline (the page's previews); everything else is
/// served as a download.
pub const INLINE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/webp", "image/gif"];

/// How long a complete file may take to be written out by the node.
const WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A complete file of `room`, written out by the node into a fresh
/// owner-only directory under `home/ui-files`, read back and removed:
/// its name, media type and bytes.
pub async fn fetched(
    handle: &Handle,
    home: &Path,
    room: &str,
    file: &str,
) -> Result<(String, String, Vec<u8>), String> {
    use std::os::unix::fs::DirBuilderExt;
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|_| "no randomness for a download directory")?;
    let dir = home.join("ui-files").join(hex::encode(random));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot make a download directory: {e}"))?;
    let out = dir.join("file");
    let result = async {
        let request = Request::FetchFile {
            room: room.to_string(),
            file: file.to_string(),
            out: Some(out.display().to_string()),
        };
        let view = match dispatch(request.normalized(), handle).await {
            Response::File(view) => view,
            Response::Error(message) => return Err(message),
            _ => return Err("unexpected answer to fetch_file".into()),
        };
        let attachment = view.attachment.ok_or("that message has no file")?;
        if attachment.held < attachment.chunks {
            return Err(format!(
                "not all of it is here yet ({} of {} parts)",
                attachment.held, attachment.chunks
            ));
        }
        // The node writes a complete file out on its own time.
        let deadline = tokio::time::Instant::now() + WRITE_WAIT;
        loop {
            if let Ok(bytes) = std::fs::read(&out)
                && bytes.len() as u64 == attachment.size
            {
                return Ok((attachment.name, attachment.media_type, bytes));
            }
            if tokio::time::Instant::now() > deadline {
                return Err("the node did not write the file out".into());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_file_names_are_taken() {
        assert_eq!(file_name("%EC%82%AC%EC%A7%84.png"), Ok("사진.png".into()));
        assert_eq!(file_name("report+v2.pdf"), Ok("report v2.pdf".into()));
        for bad in [
            "",
            "..",
            "a%2Fb",
            "%2E%2E",
            "a%00b",
            "%zz",
            "%E",
            &"x".repeat(300),
        ] {
            assert!(file_name(bad).is_err(), "{bad}");
        }
    }
}
