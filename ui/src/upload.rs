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
            };
            dispatch(request.normalized(), handle).await
        }
        Err(e) => Response::Error(format!("cannot keep the upload: {e}")),
    };
    let _ = std::fs::remove_dir_all(&dir);
    response
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
