//! The operator's requests of the control API, answered on an operator's
//! console: is this device one ([`Request::OperatorConsole`]), enroll a
//! device from its request ([`Request::Enroll`]), revoke a device or a
//! user ([`Request::AgencyRevoke`]).
//!
//! Enrolling and revoking take the operator key, sealed in the home with
//! the operator's passphrase. The passphrase comes with each request (a
//! [`SecretText`]: zeroized when dropped, never shown by `Debug`, so never
//! logged), opens the key for that one action and is dropped with the
//! request; nothing keeps it. The checks are those of `baro agency enroll`
//! and `baro agency revoke`: [`crate::enrollment`], [`crate::revocations`]
//! and [`crate::trust`] decide, this file only reads the request and words
//! the answer.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::Request;
use crate::clock::unix_now;
use crate::crypto::{CryptoError, Passphrase};
use crate::enrollment::{self, EnrollmentError};
use crate::identity::DeviceId;
use crate::node::Handle;
use crate::revocations::{self, Order, RevocationFlowError, Target};
use crate::store::{Home, HomeFile};
use crate::trust::{
    DEFAULT_DEVICE_CERT_DAYS, Enrollment, EnrollmentRequest, Role, Subject, check_bootstrap,
    validate_reason,
};
use crate::wire;

/// A secret in a request (the operator's passphrase): zeroized when
/// dropped, and `Debug` shows no part of it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretText(Zeroizing<String>);

impl SecretText {
    /// Wraps `text`.
    pub fn new(text: impl Into<String>) -> Self {
        SecretText(Zeroizing::new(text.into()))
    }

    fn passphrase(&self) -> Passphrase {
        Passphrase::from_zeroizing(self.0.clone())
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(..)")
    }
}

impl Serialize for SecretText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretText::new)
    }
}

/// An operator's console, as [`Request::OperatorConsole`] answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleView {
    /// The agency's name.
    pub agency: String,
    /// Its root key's fingerprint (read to new devices' owners).
    pub root_fingerprint: String,
    /// The operator's user id.
    pub operator: String,
    /// The operator's display name.
    pub operator_name: String,
    /// When the operator's certificate ends, Unix seconds.
    pub not_after: u64,
    /// Whether the agency root key is on this console (needed to revoke
    /// an operator).
    pub root_key_here: bool,
}

/// A device just enrolled, as [`Request::Enroll`] answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolledView {
    /// The bundle's encoding, hex: the file `baro device install` takes.
    /// It holds the agency network key: hand it over privately.
    pub bundle: String,
    /// The device it certifies.
    pub device: DeviceId,
    /// Its owner's user id.
    pub user: String,
    /// Its owner's display name.
    pub display_name: String,
    /// Its owner's org unit.
    pub org_unit: String,
    /// "member" or "relay".
    pub role: String,
    /// The certificate's serial.
    pub serial: u64,
    /// When the certificate ends, Unix seconds.
    pub not_after: u64,
    /// The agency's name.
    pub agency: String,
}

/// One operator action at a time: each opens a key with argon2id (64 MiB
/// of memory), so a page or client sending many at once waits in line.
static ONE_AT_A_TIME: Semaphore = Semaphore::const_new(1);

/// The refusal on a device whose home holds no operator key.
const NOT_A_CONSOLE: &str = "this device is not an operator's console: its home holds no operator key (operators enroll and revoke on the console `baro agency init` made)";

/// Whether `request` is one of the operator's, answered by [`answer`].
pub fn is_operator_request(request: &Request) -> bool {
    matches!(
        request,
        Request::OperatorConsole | Request::Enroll { .. } | Request::AgencyRevoke { .. }
    )
}

/// Answers an operator request on the node of the home in `root`.
pub async fn answer(request: Request, handle: &Handle, root: &Path) -> super::Response {
    use super::Response;
    let root = root.to_path_buf();
    let result = match request {
        Request::OperatorConsole => blocking(move || console(&root)).await,
        Request::Enroll {
            file,
            user,
            display_name,
            org,
            role,
            days,
            bootstrap,
            passphrase,
        } => {
            let order = EnrollOrder {
                file,
                user,
                display_name,
                org,
                role,
                days,
                bootstrap,
            };
            let _turn = ONE_AT_A_TIME.acquire().await;
            blocking(move || enroll(&root, order, &passphrase)).await
        }
        Request::AgencyRevoke {
            device,
            user,
            serial,
            reason,
            wipe,
            passphrase,
        } => {
            let _turn = ONE_AT_A_TIME.acquire().await;
            revoke(handle, root, device, user, serial, reason, wipe, passphrase).await
        }
        _ => Err("not an operator request".into()),
    };
    match result {
        Ok(response) => response,
        Err(message) => Response::Error(message),
    }
}

/// Runs `work` (file I/O, argon2id) off the async threads.
async fn blocking(
    work: impl FnOnce() -> Result<super::Response, String> + Send + 'static,
) -> Result<super::Response, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("the operator action failed: {e}"))?
}

/// The home in `root`, refused unless it holds the operator key.
fn console_home(root: &Path) -> Result<Home, String> {
    let home = Home::open(root).map_err(|e| e.to_string())?;
    if home.has(HomeFile::OperatorKey) {
        Ok(home)
    } else {
        Err(NOT_A_CONSOLE.into())
    }
}

fn console(root: &Path) -> Result<super::Response, String> {
    console_home(root)?;
    let status = enrollment::agency_status(root).map_err(|e| e.to_string())?;
    let operator = status.operator.ok_or(NOT_A_CONSOLE)?;
    Ok(super::Response::Console(ConsoleView {
        root_fingerprint: status.agency.id().fingerprint(),
        agency: status.agency.name,
        operator: operator.subject.user_id,
        operator_name: operator.subject.display_name,
        not_after: operator.not_after,
        root_key_here: status.root_key_here,
    }))
}

/// One line for an enrollment failure: a wrong passphrase said plainly.
fn enrollment_error(e: EnrollmentError) -> String {
    match e {
        EnrollmentError::Crypto(CryptoError::WrongPassphrase) => wrong_passphrase(),
        EnrollmentError::NotAnOperator => NOT_A_CONSOLE.into(),
        other => other.to_string(),
    }
}

fn wrong_passphrase() -> String {
    "wrong passphrase: the operator key did not open; nothing was done".into()
}

fn passphrase_given(passphrase: &SecretText) -> Result<Passphrase, String> {
    if passphrase.0.is_empty() {
        Err("give the operator passphrase".into())
    } else {
        Ok(passphrase.passphrase())
    }
}

/// What [`Request::Enroll`] asks, but the passphrase.
struct EnrollOrder {
    file: String,
    user: String,
    display_name: Option<String>,
    org: String,
    role: Option<String>,
    days: Option<u64>,
    bootstrap: Vec<String>,
}

fn enroll(
    root: &Path,
    order: EnrollOrder,
    passphrase: &SecretText,
) -> Result<super::Response, String> {
    console_home(root)?;
    let role: Role = order
        .role
        .as_deref()
        .unwrap_or("member")
        .parse()
        .map_err(|e: String| e)?;
    if role == Role::Operator {
        return Err("the operator role is refused: a device never gets operator authority (only the agency root certifies operators); enroll it as member".into());
    }
    let bytes = hex::decode(order.file.trim())
        .map_err(|_| "the enrollment request is not hex (send the request file's bytes)")?;
    let request: EnrollmentRequest = wire::decode(&bytes).map_err(|e| {
        format!("this file is not an enrollment request (`baro device init --out` makes one): {e}")
    })?;
    let display_name = match order.display_name {
        Some(name) if !name.trim().is_empty() => name,
        _ => request.body.display_name.clone(),
    };
    let subject = Subject {
        user_id: order.user.trim().to_string(),
        display_name,
        org_unit: order.org.trim().parse().map_err(|e| format!("{e}"))?,
    };
    subject.validate().map_err(|e| e.to_string())?;
    check_bootstrap(&order.bootstrap).map_err(|e| e.to_string())?;
    let passphrase = passphrase_given(passphrase)?;
    let now = unix_now();
    let bundle = enrollment::enroll(
        root,
        &passphrase,
        &bytes,
        Enrollment {
            subject,
            role,
            days: order.days.unwrap_or(DEFAULT_DEVICE_CERT_DAYS),
            bootstrap: order.bootstrap,
        },
        now,
    )
    .map_err(enrollment_error)?;
    let device = bundle
        .body
        .chain
        .verify(&bundle.body.agency, now, &Default::default())
        .map_err(|e| e.to_string())?;
    Ok(super::Response::Enrolled(EnrolledView {
        bundle: hex::encode(wire::encode(&bundle)),
        device: device.device,
        user: device.subject.user_id,
        display_name: device.subject.display_name,
        org_unit: device.subject.org_unit.as_str().to_string(),
        role: device.role.to_string(),
        serial: device.serial,
        not_after: device.not_after,
        agency: bundle.body.agency.name,
    }))
}

/// What to revoke, as the request names it.
fn target(
    device: Option<String>,
    user: Option<String>,
    serial: Option<u64>,
) -> Result<Target, String> {
    let device = device.filter(|d| !d.trim().is_empty());
    let user = user.filter(|u| !u.trim().is_empty());
    let parse = |d: &str| d.trim().parse::<DeviceId>().map_err(|e| format!("{e}"));
    match (device, user, serial) {
        (Some(_), Some(_), _) => Err("name a device or a user to revoke, not both".into()),
        (Some(device), None, Some(serial)) => Ok(Target::Certificate(parse(&device)?, serial)),
        (Some(device), None, None) => Ok(Target::Device(parse(&device)?)),
        (None, Some(_), Some(_)) => Err("a certificate serial goes with a device".into()),
        (None, Some(user), None) => Ok(Target::User(user.trim().to_string())),
        (None, None, _) => Err("name what to revoke: a device id or a user id".into()),
    }
}

/// One line for a revocation failure.
fn revocation_error(e: RevocationFlowError) -> String {
    match e {
        RevocationFlowError::Enrollment(e) => enrollment_error(e),
        other => other.to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn revoke(
    handle: &Handle,
    root: PathBuf,
    device: Option<String>,
    user: Option<String>,
    serial: Option<u64>,
    reason: String,
    wipe: bool,
    passphrase: SecretText,
) -> Result<super::Response, String> {
    {
        let root = root.clone();
        blocking(move || console_home(&root).map(|_| super::Response::Done)).await?;
    }
    let target = target(device, user, serial)?;
    validate_reason(&reason).map_err(|e| e.to_string())?;
    let passphrase = passphrase_given(&passphrase)?;
    // The chain as the running node knows it, or else as this console
    // issued it (whether or not the node has met the device).
    let chain = match handle.device_chain(target.clone()).await {
        Ok(chain) => {
            if let Target::Certificate(_, serial) = target
                && chain.leaf().map(|leaf| leaf.body.serial) != Some(serial)
            {
                return Err(format!(
                    "this node knows another certificate of this device (#{}), not #{serial}: check the serial",
                    chain.leaf().map_or(0, |leaf| leaf.body.serial)
                ));
            }
            chain
        }
        Err(e) => {
            let (root, wanted) = (root.clone(), target.clone());
            match tokio::task::spawn_blocking(move || revocations::find_issued(&root, &wanted))
                .await
            {
                Ok(Ok(chain)) => chain,
                _ => return Err(e.to_string()),
            }
        }
    };
    let order = Order {
        reason,
        wipe,
        now: unix_now(),
    };
    let scope = target.scope();
    let revocation = tokio::task::spawn_blocking(move || {
        revocations::sign_as_operator(&root, &passphrase, chain, scope, &order)
    })
    .await
    .map_err(|e| format!("the operator action failed: {e}"))?
    .map_err(revocation_error)?;
    handle
        .submit_new_revocation(wire::encode(&revocation))
        .await
        .map(super::Response::Revocation)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_passphrase_is_never_shown_and_round_trips_as_a_plain_string() {
        let request = Request::AgencyRevoke {
            device: None,
            user: Some("kim".into()),
            serial: None,
            reason: "lost".into(),
            wipe: true,
            passphrase: SecretText::new("correct horse battery"),
        };
        assert!(!format!("{request:?}").contains("horse"), "{request:?}");
        let json = serde_json::to_string(&request).expect("json");
        assert!(
            json.contains(r#""passphrase":"correct horse battery""#),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<Request>(&json).expect("parsed"),
            request
        );
    }

    #[test]
    fn a_revocation_names_one_device_or_one_user() {
        let device = crate::testing::TestAgency::new(3).key().device_id();
        let id = Some(device.to_string());
        assert_eq!(target(id.clone(), None, None), Ok(Target::Device(device)));
        assert_eq!(
            target(id.clone(), Some(" ".into()), Some(4)),
            Ok(Target::Certificate(device, 4))
        );
        assert_eq!(
            target(None, Some("kim".into()), None),
            Ok(Target::User("kim".into()))
        );
        for (device, user, serial, expected) in [
            (id.clone(), Some("kim".into()), None, "not both"),
            (None, Some("kim".into()), Some(2), "goes with a device"),
            (None, None, None, "name what to revoke"),
            (Some(String::new()), Some(String::new()), None, "name what"),
        ] {
            let error = target(device, user, serial).expect_err("refused");
            assert!(error.contains(expected), "{error}");
        }
        assert!(target(Some("not-a-device".into()), None, None).is_err());
    }
}
