//! The enrollment flows on a node's home: create an agency, create a device,
//! certify it (operator side), install the bundle, and describe the device.
//!
//! I/O lives here and in [`crate::store`]; every decision is made by
//! [`crate::trust`]. The CLI, the demo and tests all use these functions.

use std::path::Path;

use zeroize::Zeroizing;

use crate::crypto::{CryptoError, KdfParams, Passphrase, PassphraseSealed};
use crate::identity::{DeviceId, KeyPair, OsEntropy, SecretBytes};
use crate::store::{Home, HomeFile, StoreError};
use crate::trust::{
    AgencyInfo, CertificateChain, DEFAULT_DEVICE_CERT_DAYS, Enrollment, EnrollmentBundle,
    EnrollmentRequest, NewAgency, Operator, Role, Subject, TrustError, TrustPolicy, VerifiedDevice,
};
use crate::wire::{self, Format, WireError};

const ROOT_KEY_PURPOSE: &str = "baro agency root key";
const OPERATOR_KEY_PURPOSE: &str = "baro operator key";

/// Why an enrollment step failed; each message is one line saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum EnrollmentError {
    /// Reading or writing the home failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A certificate, request or bundle is not trusted.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// A key file could not be opened (e.g. wrong passphrase).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Input bytes are not the expected format.
    #[error("cannot read {what}: {source}")]
    Format {
        /// What was being read.
        what: String,
        /// Why it does not decode.
        source: WireError,
    },
    /// The home already holds an identity.
    #[error("{0} already holds a device identity; use another --home")]
    AlreadyInitialised(String),
    /// The bundle certifies another device.
    #[error(
        "this bundle is for {name} ({user})'s device {device}, not this device: install it on that device, or ask the operator for this device's own bundle"
    )]
    NotThisDevice {
        /// The display name it certifies.
        name: String,
        /// Its user id.
        user: String,
        /// The device it is for.
        device: DeviceId,
    },
    /// The home has no device key yet.
    #[error("this home has no device key: run `baro device init` first")]
    NoDeviceKey,
    /// The device has not installed a bundle yet.
    #[error(
        "this device is not enrolled yet: send its request to an operator, then run `baro device install BUNDLE`"
    )]
    NotEnrolled,
    /// The home holds no operator key.
    #[error(
        "this home holds no operator key: run this on the operator's home (created by `baro agency init`)"
    )]
    NotAnOperator,
    /// The agency root key was moved off this console.
    #[error(
        "the agency root key is offline (moved off this console by `baro agency export-root`): bring it back with `baro agency import-root FILE`, then try again"
    )]
    RootKeyOffline,
    /// The root key file offered is not this agency's root key.
    #[error("{0} is not the root key of agency {1}")]
    NotThisRoot(String, String),
    /// The root key is already on this console.
    #[error("this console already holds the agency root key")]
    RootKeyPresent,
    /// The bundle's agency root is not the one the user was told to expect.
    #[error(
        "this bundle's agency \"{agency}\" has root fingerprint {found}, not the {expected} you expected: it is not from your agency; do not install it and tell your operator"
    )]
    UnexpectedRoot {
        /// The name the bundle claims.
        agency: String,
        /// Its root's fingerprint.
        found: String,
        /// What the user typed.
        expected: String,
    },
    /// The bundle is for another agency than the one already installed.
    #[error(
        "this device is already enrolled in agency {installed}; the bundle is for agency {offered}"
    )]
    WrongAgency {
        /// Agency installed.
        installed: String,
        /// Agency of the offered bundle.
        offered: String,
    },
}

fn decode_as<T: Format>(what: &str, bytes: &[u8]) -> Result<T, EnrollmentError> {
    wire::decode(bytes).map_err(|source| EnrollmentError::Format {
        what: what.to_string(),
        source,
    })
}

/// What `baro agency init` creates.
#[derive(Debug, Clone)]
pub struct AgencyInit {
    /// Agency name.
    pub name: String,
    /// The first operator (also the owner of this home's device).
    pub operator: Subject,
    /// argon2id cost for the root and operator key files.
    pub kdf: KdfParams,
    /// Relay addresses the console's own node dials (as `agency enroll
    /// --bootstrap` puts in a device's bundle).
    pub bootstrap: Vec<String>,
    /// The console device's label (e.g. "console"), if any.
    pub label: Option<String>,
}

/// The device in a home, and its enrollment if installed.
#[derive(Debug, Clone)]
pub struct DeviceStatus {
    /// The device id (PeerId).
    pub device: DeviceId,
    /// The installed bundle's agency and verification result.
    pub enrollment: Option<InstalledEnrollment>,
}

/// An installed bundle as seen now.
#[derive(Debug, Clone)]
pub struct InstalledEnrollment {
    /// The agency.
    pub agency: AgencyInfo,
    /// The certified details (from the leaf certificate).
    pub details: VerifiedDevice,
    /// `Ok` if the chain verifies now, else why not (e.g. expired).
    pub validity: Result<(), TrustError>,
    /// Bootstrap addresses from the bundle.
    pub bootstrap: Vec<String>,
    /// Whether this home can enroll others (holds an operator key).
    pub is_operator_console: bool,
}

/// Creates an agency in `root`: root key, first operator key (both
/// passphrase-sealed), network key, and this home enrolled as the operator's
/// own device with role member: the console's device key, which sits in the
/// home without a passphrase, issues nothing; enrolling and revoking take
/// the passphrase-sealed operator key (audit H2).
pub fn init_agency(
    root: &Path,
    init: AgencyInit,
    passphrase: &Passphrase,
    now: u64,
) -> Result<VerifiedDevice, EnrollmentError> {
    passphrase.check_strength()?;
    crate::trust::check_bootstrap(&init.bootstrap)?;
    let label = init
        .label
        .as_deref()
        .map(crate::trust::device_label)
        .transpose()?;
    let home = Home::open_or_create(root)?;
    if home.has(HomeFile::DeviceKey) || home.has(HomeFile::RootKey) {
        return Err(EnrollmentError::AlreadyInitialised(
            root.display().to_string(),
        ));
    }
    let entropy = &mut OsEntropy;
    let agency = NewAgency::create(&init.name, init.operator.clone(), now, entropy)?;
    let root_sealed = PassphraseSealed::seal(
        passphrase,
        ROOT_KEY_PURPOSE,
        &agency.root.secret().0,
        init.kdf,
        entropy,
    )?;
    let operator_sealed = PassphraseSealed::seal(
        passphrase,
        OPERATOR_KEY_PURPOSE,
        &agency.operator.key.secret().0,
        init.kdf,
        entropy,
    )?;
    let device = KeyPair::generate(entropy);
    let request = EnrollmentRequest::new(&device, &init.operator.display_name, now)?;
    let bundle = agency.operator.enroll(
        &request,
        Enrollment {
            subject: init.operator,
            role: Role::Member,
            days: DEFAULT_DEVICE_CERT_DAYS,
            bootstrap: init.bootstrap,
        },
        &agency.network_key,
        now,
        &TrustPolicy::default(),
        entropy,
    )?;
    home.write(HomeFile::RootKey, &wire::encode(&root_sealed))?;
    home.write(HomeFile::OperatorKey, &wire::encode(&operator_sealed))?;
    home.write(
        HomeFile::OperatorChain,
        &wire::encode(&agency.operator.chain),
    )?;
    home.write(
        HomeFile::DeviceKey,
        &Zeroizing::new(wire::encode(&device.secret())),
    )?;
    home.write(HomeFile::Bundle, &wire::encode(&bundle))?;
    if let Some(label) = label {
        home.write(HomeFile::Label, label.as_bytes())?;
    }
    Ok(bundle.verify_for(device.device_id(), now, &TrustPolicy::default())?)
}

/// This device's label ("PC", "휴대폰"), if its owner set one.
pub fn load_label(home: &Home) -> Result<Option<String>, EnrollmentError> {
    Ok(home
        .read(HomeFile::Label)?
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok()))
}

/// Creates this home's device key (or reuses the one already there), keeps
/// its `label` if given, and returns a signed enrollment request for it.
pub fn init_device(
    root: &Path,
    display_name: &str,
    label: Option<&str>,
    now: u64,
) -> Result<EnrollmentRequest, EnrollmentError> {
    let label = label.map(crate::trust::device_label).transpose()?;
    let home = Home::open_or_create(root)?;
    if home.has(HomeFile::Bundle) {
        return Err(EnrollmentError::AlreadyInitialised(
            root.display().to_string(),
        ));
    }
    let device = match load_device_key(&home) {
        Ok(existing) => existing,
        Err(EnrollmentError::NoDeviceKey) => {
            let device = KeyPair::generate(&mut OsEntropy);
            home.write(
                HomeFile::DeviceKey,
                &Zeroizing::new(wire::encode(&device.secret())),
            )?;
            device
        }
        Err(other) => return Err(other),
    };
    if let Some(label) = label {
        home.write(HomeFile::Label, label.as_bytes())?;
    }
    Ok(EnrollmentRequest::new(&device, display_name, now)?)
}

/// Operator side: certifies the device in `request_bytes` and returns its bundle.
pub fn enroll(
    root: &Path,
    passphrase: &Passphrase,
    request_bytes: &[u8],
    enrollment: Enrollment,
    now: u64,
) -> Result<EnrollmentBundle, EnrollmentError> {
    let request: EnrollmentRequest = decode_as("the enrollment request", request_bytes)?;
    request.verify()?;
    let home = Home::open(root)?;
    let operator = load_operator(&home, passphrase)?;
    let own: EnrollmentBundle = load_bundle(&home)?;
    let bundle = operator.enroll(
        &request,
        enrollment,
        &own.body.network_key,
        now,
        &TrustPolicy::default(),
        &mut OsEntropy,
    )?;
    // The console keeps what it issued: it can revoke the device at once,
    // whether or not its node has met it (usability finding 27).
    home.keep_issued(
        &request.body.device_key.device_id(),
        &wire::encode(&bundle.body.chain),
    )?;
    Ok(bundle)
}

/// The certificate chains this operator home issued (`agency enroll`),
/// oldest first; unreadable ones are skipped.
pub fn issued_chains(root: &Path) -> Result<Vec<CertificateChain>, EnrollmentError> {
    let home = Home::open(root)?;
    Ok(home
        .issued()?
        .iter()
        .filter_map(|bytes| wire::decode::<CertificateChain>(bytes).ok())
        .collect())
}

/// Verifies `bundle_bytes` for this home's device and installs it.
pub fn install(
    root: &Path,
    bundle_bytes: &[u8],
    now: u64,
) -> Result<VerifiedDevice, EnrollmentError> {
    install_expecting(root, bundle_bytes, now, None)
}

/// [`install`], refusing a bundle whose agency root does not have the
/// fingerprint `expect_root` (as [`crate::trust::AgencyId::fingerprint`]
/// shows it, read out by the operator): a first bundle is otherwise
/// trusted on first use, and a fake agency's would be taken (audit L8).
pub fn install_expecting(
    root: &Path,
    bundle_bytes: &[u8],
    now: u64,
    expect_root: Option<&str>,
) -> Result<VerifiedDevice, EnrollmentError> {
    let bundle: EnrollmentBundle = decode_as("the enrollment bundle", bundle_bytes)?;
    let offered = bundle.body.agency.id();
    if let Some(expected) = expect_root
        && !offered.matches_fingerprint(expected)
    {
        return Err(EnrollmentError::UnexpectedRoot {
            agency: bundle.body.agency.name.clone(),
            found: offered.fingerprint(),
            expected: expected.trim().to_string(),
        });
    }
    let home = Home::open(root)?;
    let device = load_device_key(&home)?;
    if let Ok(installed) = load_bundle(&home) {
        let (installed, offered) = (installed.body.agency, &bundle.body.agency);
        if installed.id() != offered.id() {
            return Err(EnrollmentError::WrongAgency {
                installed: format!("{} ({})", installed.name, installed.id()),
                offered: format!("{} ({})", offered.name, offered.id()),
            });
        }
    }
    // Someone else's bundle: say whose (usability finding 26).
    if let Some(leaf) = bundle.body.chain.leaf()
        && leaf.body.key.device_id() != device.device_id()
    {
        return Err(EnrollmentError::NotThisDevice {
            name: leaf.body.subject.display_name.clone(),
            user: leaf.body.subject.user_id.clone(),
            device: leaf.body.key.device_id(),
        });
    }
    let verified = bundle.verify_for(device.device_id(), now, &TrustPolicy::default())?;
    home.write(HomeFile::Bundle, bundle_bytes)?;
    Ok(verified)
}

/// Describes the device in `root`: its id and, if enrolled, its certificate.
pub fn status(root: &Path, now: u64) -> Result<DeviceStatus, EnrollmentError> {
    let home = Home::open(root)?;
    let device = load_device_key(&home)?.device_id();
    let enrollment = match load_bundle(&home) {
        Ok(bundle) => Some(describe(&home, &bundle, device, now)?),
        Err(EnrollmentError::NotEnrolled) => None,
        Err(other) => return Err(other),
    };
    Ok(DeviceStatus { device, enrollment })
}

fn describe(
    home: &Home,
    bundle: &EnrollmentBundle,
    device: DeviceId,
    now: u64,
) -> Result<InstalledEnrollment, EnrollmentError> {
    let policy = TrustPolicy::default();
    let validity = bundle.verify_for(device, now, &policy).map(|_| ());
    // Show the certified details even when the chain no longer verifies now
    // (e.g. expired): verify at the certificate's own start time for that.
    let leaf_start = bundle
        .body
        .chain
        .leaf()
        .map(|c| c.body.not_before)
        .unwrap_or(now);
    let details = bundle.verify_for(device, leaf_start, &policy)?;
    Ok(InstalledEnrollment {
        agency: bundle.body.agency.clone(),
        details,
        validity,
        bootstrap: bundle.body.bootstrap.clone(),
        is_operator_console: home.has(HomeFile::OperatorKey),
    })
}

/// What an operator's console holds of its agency's authority.
#[derive(Debug, Clone)]
pub struct AgencyStatus {
    /// The agency (name and root public key).
    pub agency: AgencyInfo,
    /// The operator certificate kept here (none on a device's home).
    pub operator: Option<crate::trust::CertificateBody>,
    /// Whether the agency root key is on this console (not exported).
    pub root_key_here: bool,
}

/// The agency, operator and root key of the console in `root`.
pub fn agency_status(root: &Path) -> Result<AgencyStatus, EnrollmentError> {
    let home = Home::open(root)?;
    let agency = load_bundle(&home)?.body.agency;
    let operator =
        load_operator_chain(&home)?.and_then(|chain| chain.leaf().map(|leaf| leaf.body.clone()));
    Ok(AgencyStatus {
        agency,
        operator,
        root_key_here: home.has(HomeFile::RootKey),
    })
}

/// Loads this home's device key.
pub fn load_device_key(home: &Home) -> Result<KeyPair, EnrollmentError> {
    let bytes = home
        .read(HomeFile::DeviceKey)?
        .ok_or(EnrollmentError::NoDeviceKey)?;
    let secret: SecretBytes = decode_as("the device key file", &bytes)?;
    Ok(KeyPair::from_secret(&secret))
}

/// Loads this home's installed bundle.
pub fn load_bundle(home: &Home) -> Result<EnrollmentBundle, EnrollmentError> {
    let bytes = home
        .read(HomeFile::Bundle)?
        .ok_or(EnrollmentError::NotEnrolled)?;
    decode_as("the installed bundle", &bytes)
}

/// Loads and unlocks this home's agency root key (to revoke operators).
pub fn load_root_key(home: &Home, passphrase: &Passphrase) -> Result<KeyPair, EnrollmentError> {
    let Some(sealed_bytes) = home.read(HomeFile::RootKey)? else {
        return Err(if home.has(HomeFile::OperatorKey) {
            EnrollmentError::RootKeyOffline
        } else {
            EnrollmentError::NotAnOperator
        });
    };
    open_root_key(&sealed_bytes, passphrase, "the root key file")
}

fn open_root_key(
    sealed_bytes: &[u8],
    passphrase: &Passphrase,
    what: &str,
) -> Result<KeyPair, EnrollmentError> {
    let sealed: PassphraseSealed = decode_as(what, sealed_bytes)?;
    let secret_bytes = sealed.open(passphrase, ROOT_KEY_PURPOSE)?;
    let secret = SecretBytes(
        <[u8; 32]>::try_from(secret_bytes.as_slice())
            .map_err(|_| EnrollmentError::NotAnOperator)?,
    );
    Ok(KeyPair::from_secret(&secret))
}

/// The agency root key as it leaves the console (audit L5): the
/// passphrase-sealed file's bytes, after checking that the passphrase
/// opens them and that they hold this agency's root. Nothing is removed:
/// once the caller has stored them safely, [`forget_root_key`].
pub fn export_root_key(root: &Path, passphrase: &Passphrase) -> Result<Vec<u8>, EnrollmentError> {
    let home = Home::open(root)?;
    let key = load_root_key(&home, passphrase)?;
    let agency = load_bundle(&home)?.body.agency;
    if key.public() != agency.root {
        return Err(EnrollmentError::NotThisRoot(
            "this console's root key file".into(),
            agency.name,
        ));
    }
    let sealed = home
        .read(HomeFile::RootKey)?
        .ok_or(EnrollmentError::RootKeyOffline)?;
    Ok(sealed.to_vec())
}

/// Removes the agency root key from the console, keeping only its public
/// key (in the bundle), which is all verifying needs; `exported` must be
/// what [`export_root_key`] returned and opens with `passphrase`.
pub fn forget_root_key(
    root: &Path,
    exported: &[u8],
    passphrase: &Passphrase,
) -> Result<(), EnrollmentError> {
    let home = Home::open(root)?;
    let agency = load_bundle(&home)?.body.agency;
    if open_root_key(exported, passphrase, "the exported root key")?.public() != agency.root {
        return Err(EnrollmentError::NotThisRoot(
            "the exported file".into(),
            agency.name,
        ));
    }
    Ok(home.remove(HomeFile::RootKey)?)
}

/// Brings the agency root key back onto the console from `bytes` (a file
/// written by `baro agency export-root`), after checking that it opens with
/// `passphrase` and is this agency's root.
pub fn import_root_key(
    root: &Path,
    bytes: &[u8],
    passphrase: &Passphrase,
) -> Result<AgencyInfo, EnrollmentError> {
    let home = Home::open(root)?;
    if !home.has(HomeFile::OperatorKey) {
        return Err(EnrollmentError::NotAnOperator);
    }
    if home.has(HomeFile::RootKey) {
        return Err(EnrollmentError::RootKeyPresent);
    }
    let agency = load_bundle(&home)?.body.agency;
    let key = open_root_key(bytes, passphrase, "the root key file")?;
    if key.public() != agency.root {
        return Err(EnrollmentError::NotThisRoot(
            "this file".into(),
            format!("{} ({})", agency.name, agency.id()),
        ));
    }
    home.write(HomeFile::RootKey, bytes)?;
    Ok(agency)
}

/// This home's operator certificate chain, if it is an operator's console
/// (no passphrase needed: the chain is public).
pub fn load_operator_chain(home: &Home) -> Result<Option<CertificateChain>, EnrollmentError> {
    match home.read(HomeFile::OperatorChain)? {
        Some(bytes) => Ok(Some(decode_as("the operator certificate chain", &bytes)?)),
        None => Ok(None),
    }
}

/// Loads and unlocks this home's operator credentials.
pub fn load_operator(home: &Home, passphrase: &Passphrase) -> Result<Operator, EnrollmentError> {
    let sealed_bytes = home
        .read(HomeFile::OperatorKey)?
        .ok_or(EnrollmentError::NotAnOperator)?;
    let sealed: PassphraseSealed = decode_as("the operator key file", &sealed_bytes)?;
    let secret_bytes = sealed.open(passphrase, OPERATOR_KEY_PURPOSE)?;
    let secret = SecretBytes(
        <[u8; 32]>::try_from(secret_bytes.as_slice())
            .map_err(|_| EnrollmentError::NotAnOperator)?,
    );
    let chain_bytes = home
        .read(HomeFile::OperatorChain)?
        .ok_or(EnrollmentError::NotAnOperator)?;
    let chain: CertificateChain = decode_as("the operator certificate chain", &chain_bytes)?;
    let agency = load_bundle(home)?.body.agency;
    Ok(Operator {
        key: KeyPair::from_secret(&secret),
        chain,
        agency,
    })
}
