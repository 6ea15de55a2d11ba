//! The page's files, embedded in the binary: hand-written HTML, CSS and
//! JavaScript with no build step (what is in `ui/assets/` is what runs).

/// The app (served to a session only).
pub const INDEX_HTML: &str = include_str!("../assets/index.html");
/// What a browser without a session sees.
pub const LOGIN_HTML: &str = include_str!("../assets/login.html");
/// The app's script (served to a session only).
pub const APP_JS: &str = include_str!("../assets/app.js");
/// The texts of the app, in Korean and English.
pub const I18N_JS: &str = include_str!("../assets/i18n.js");
/// The style sheet (the login page uses it too; it holds nothing private).
pub const STYLE_CSS: &str = include_str!("../assets/style.css");
/// The icon.
pub const ICON_SVG: &str = include_str!("../assets/icon.svg");
/// The answer to a good login URL: sets the session, then opens the app.
pub const ENTER_HTML: &str = include_str!("../assets/enter.html");
