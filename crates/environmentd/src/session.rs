//! A client's session: who is connected, the transaction it is in, and its variables.
//!
//! One [`Session`] lives per pgwire connection. The front end ([`crate::pgwire`]) creates
//! it at startup and applies the startup packet's settings to it; the coordinator reads
//! and writes it while executing statements (`SET`, `SHOW`, `BEGIN`, ...). The front end
//! reads it back after every request: [`Session::transaction`] becomes ReadyForQuery's
//! status byte, and [`Session::take_reportable_changes`] becomes ParameterStatus messages.
//!
//! Variables are transactional, as in PostgreSQL: the coordinator takes a
//! [`Session::snapshot_vars`] at BEGIN and puts it back with [`Session::restore_vars`] at
//! ROLLBACK (and at the end of a transaction that used `SET LOCAL`).
//!
//! Invariant: every built-in variable always holds a value its validator accepted, so
//! `get` of a built-in never fails and what `SHOW` prints is what `SET` would accept.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::adapter::AdapterError;

/// The PostgreSQL version Freshet reports in `server_version`: clients (libpq, JDBC,
/// asyncpg) parse it as a number, so it carries no suffix.
pub const SERVER_VERSION: &str = "15.0";

/// `server_version` as `server_version_num` spells it.
pub const SERVER_VERSION_NUM: &str = "150000";

/// What `SELECT version()` returns: PostgreSQL's shape, naming Freshet.
pub fn version_string() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (Freshet {}) on {}-{}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS,
    )
}

/// The user a connection gets when its startup packet names none.
pub const DEFAULT_USER: &str = "freshet";

/// The database a connection gets when its startup packet names none.
pub const DEFAULT_DATABASE: &str = "freshet";

/// A connection id no other session of this process has had (until 2^32 sessions wrap
/// it): pgwire sends it as BackendKeyData's process id, and CancelRequests name it.
pub fn allocate_conn_id() -> u32 {
    static NEXT_CONN_ID: AtomicU32 = AtomicU32::new(1);
    NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed)
}

/// Where a session is with respect to transactions; ReadyForQuery reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransactionStatus {
    /// Not in a transaction block (`I`).
    #[default]
    Idle,
    /// In a transaction block opened by `BEGIN` (`T`).
    InBlock,
    /// In a transaction block that saw an error; only `ROLLBACK`/`COMMIT` end it (`E`).
    Failed,
}

impl TransactionStatus {
    /// The status byte ReadyForQuery carries: `I`, `T` or `E`.
    pub fn ready_for_query_byte(&self) -> u8 {
        match self {
            TransactionStatus::Idle => b'I',
            TransactionStatus::InBlock => b'T',
            TransactionStatus::Failed => b'E',
        }
    }
}

/// Checks a value for a variable and returns it in the form `SHOW` prints.
type Validator = fn(&str, &str) -> Result<String, AdapterError>;

/// A built-in session variable.
struct VarDef {
    /// The name as PostgreSQL spells it in `SHOW ALL` and ParameterStatus.
    name: &'static str,
    /// The value a new session starts with (see [`Session::new`] for `session_authorization`).
    default: &'static str,
    description: &'static str,
    /// `SET` refuses to change it (55P02).
    read_only: bool,
    /// A change is reported to the client with ParameterStatus (PostgreSQL's GUC_REPORT).
    report: bool,
    validate: Validator,
}

/// Every built-in variable, sorted by lowercase name (the order of `SHOW ALL`).
const VARS: &[VarDef] = &[
    VarDef {
        name: "application_name",
        default: "",
        description: "Sets the application name to be reported in statistics and logs.",
        read_only: false,
        report: true,
        validate: application_name,
    },
    VarDef {
        name: "client_encoding",
        default: "UTF8",
        description: "Sets the client's character set encoding.",
        read_only: false,
        report: true,
        validate: client_encoding,
    },
    VarDef {
        name: "client_min_messages",
        default: "notice",
        description: "Sets the message levels that are sent to the client.",
        read_only: false,
        report: false,
        validate: message_level,
    },
    VarDef {
        name: "cluster",
        default: "quickstart",
        description: "Sets the current cluster (Freshet).",
        read_only: false,
        report: false,
        validate: non_empty,
    },
    VarDef {
        name: "DateStyle",
        default: "ISO, MDY",
        description: "Sets the display format for date and time values.",
        read_only: false,
        report: true,
        validate: date_style,
    },
    VarDef {
        name: "extra_float_digits",
        default: "1",
        description: "Sets the number of digits displayed for floating-point values.",
        read_only: false,
        report: false,
        validate: extra_float_digits,
    },
    VarDef {
        name: "integer_datetimes",
        default: "on",
        description: "Shows whether datetimes are integer based.",
        read_only: true,
        report: true,
        validate: any,
    },
    VarDef {
        name: "IntervalStyle",
        default: "postgres",
        description: "Sets the display format for interval values.",
        read_only: false,
        report: true,
        validate: interval_style,
    },
    VarDef {
        name: "is_superuser",
        default: "off",
        description: "Shows whether the current user is a superuser.",
        read_only: true,
        report: true,
        validate: any,
    },
    VarDef {
        name: "max_identifier_length",
        default: "63",
        description: "Shows the maximum identifier length.",
        read_only: true,
        report: false,
        validate: any,
    },
    VarDef {
        name: "max_subscribe_buffer_rows",
        default: "1000000",
        description: "Sets how many SUBSCRIBE rows may wait for a client that is not reading before the subscription ends with an error.",
        read_only: false,
        report: false,
        validate: positive_count,
    },
    VarDef {
        name: "search_path",
        default: "public",
        description: "Sets the schema search order for names that are not schema-qualified.",
        read_only: false,
        report: false,
        validate: any,
    },
    VarDef {
        name: "server_encoding",
        default: "UTF8",
        description: "Shows the server (database) character set encoding.",
        read_only: true,
        report: true,
        validate: any,
    },
    VarDef {
        name: "server_version",
        default: SERVER_VERSION,
        description: "Shows the PostgreSQL version Freshet is compatible with.",
        read_only: true,
        report: true,
        validate: any,
    },
    VarDef {
        name: "server_version_num",
        default: SERVER_VERSION_NUM,
        description: "Shows the PostgreSQL version Freshet is compatible with, as an integer.",
        read_only: true,
        report: false,
        validate: any,
    },
    VarDef {
        name: "session_authorization",
        default: DEFAULT_USER,
        description: "Shows the session user name.",
        read_only: true,
        report: true,
        validate: any,
    },
    VarDef {
        name: "standard_conforming_strings",
        default: "on",
        description: "Causes '...' strings to treat backslashes literally.",
        read_only: false,
        report: true,
        validate: standard_conforming_strings,
    },
    VarDef {
        name: "statement_timeout",
        default: "0",
        description: "Sets the maximum allowed duration of any statement (0 disables it).",
        read_only: false,
        report: false,
        validate: statement_timeout,
    },
    VarDef {
        name: "tick_interval",
        default: "",
        description: "Sets how often this session wants table uppers to advance without writes (Freshet); empty follows the system's tick, and the tick is the shortest any session asks for.",
        read_only: false,
        report: false,
        validate: tick_interval,
    },
    VarDef {
        name: "TimeZone",
        default: "UTC",
        description: "Sets the time zone for displaying and interpreting time stamps.",
        read_only: false,
        report: true,
        validate: time_zone,
    },
    VarDef {
        name: "transaction_isolation",
        default: "strict serializable",
        description: "Sets the current transaction's isolation level.",
        read_only: false,
        report: false,
        validate: transaction_isolation,
    },
];

/// The built-in variable with this name, compared without regard to case.
fn lookup(name: &str) -> Option<&'static VarDef> {
    VARS.iter().find(|v| v.name.eq_ignore_ascii_case(name))
}

/// A name PostgreSQL accepts for a custom ("placeholder") variable: `prefix.name`.
fn is_custom_name(name: &str) -> bool {
    name.contains('.')
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        })
}

/// The value of one built-in variable: what it is now, and what `RESET` returns it to.
#[derive(Clone, Debug, PartialEq, Eq)]
struct VarValue {
    value: String,
    reset: String,
}

/// A copy of a session's variables, taken at BEGIN so that ROLLBACK can restore them
/// (PostgreSQL's `SET` is transactional). Opaque outside this module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionVars {
    vars: BTreeMap<&'static str, VarValue>,
    custom: BTreeMap<String, String>,
}

impl SessionVars {
    /// Copies one variable's current value (by name in any case) from `session`: a
    /// transaction's "value at COMMIT" follows a plain `SET`, but not a `SET LOCAL`.
    /// Unknown names are ignored.
    pub fn copy_from(&mut self, session: &Session, name: &str) {
        match lookup(name) {
            Some(def) => {
                if let Some(value) = session.vars.get(def.name) {
                    self.vars.insert(def.name, value.clone());
                }
            }
            None => {
                let name = name.to_lowercase();
                match session.custom.get(&name) {
                    Some(value) => self.custom.insert(name, value.clone()),
                    None => self.custom.remove(&name),
                };
            }
        }
    }
}

/// One connection's state.
#[derive(Clone, Debug)]
pub struct Session {
    /// The connection id, sent as BackendKeyData's process id.
    pub conn_id: u32,
    /// The secret a CancelRequest must present along with `conn_id`.
    pub secret_key: i32,
    pub user: String,
    pub database: String,
    /// Set by the coordinator on BEGIN/COMMIT/ROLLBACK and on errors inside a block.
    pub transaction: TransactionStatus,
    /// Built-in variables by canonical name.
    vars: BTreeMap<&'static str, VarValue>,
    /// Custom `prefix.name` variables by lowercase name.
    custom: BTreeMap<String, String>,
    /// Reported variables whose value changed since the last `take_reportable_changes`.
    pending_reports: BTreeSet<&'static str>,
}

impl Session {
    /// A new session with every variable at its default.
    pub fn new(
        conn_id: u32,
        secret_key: i32,
        user: impl Into<String>,
        database: impl Into<String>,
    ) -> Session {
        let user = user.into();
        let vars = VARS
            .iter()
            .map(|def| {
                let value = match def.name {
                    "session_authorization" => user.clone(),
                    _ => def.default.to_string(),
                };
                let var = VarValue {
                    reset: value.clone(),
                    value,
                };
                (def.name, var)
            })
            .collect();
        Session {
            conn_id,
            secret_key,
            user,
            database: database.into(),
            transaction: TransactionStatus::Idle,
            vars,
            custom: BTreeMap::new(),
            pending_reports: BTreeSet::new(),
        }
    }

    /// The value of a variable, by name in any case.
    pub fn get(&self, name: &str) -> Option<&str> {
        match lookup(name) {
            Some(def) => self.vars.get(def.name).map(|v| v.value.as_str()),
            None => self.custom.get(&name.to_lowercase()).map(String::as_str),
        }
    }

    /// Sets a variable (`SET name = value`), validating and normalising the value.
    ///
    /// Errors: 42704 for an unknown variable, 55P02 for a read-only one, 22023 (or the
    /// validator's code) for a value the variable does not accept.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), AdapterError> {
        self.set_inner(name, value, false)
    }

    /// Sets a variable from the startup packet: like [`Session::set`], but the value also
    /// becomes the one `RESET` returns to, as in PostgreSQL.
    pub fn set_startup(&mut self, name: &str, value: &str) -> Result<(), AdapterError> {
        self.set_inner(name, value, true)
    }

    fn set_inner(&mut self, name: &str, value: &str, startup: bool) -> Result<(), AdapterError> {
        let Some(def) = lookup(name) else {
            if is_custom_name(name) {
                self.custom.insert(name.to_lowercase(), value.to_string());
                return Ok(());
            }
            return Err(unrecognized(name));
        };
        if def.read_only {
            return Err(read_only(def.name));
        }
        let value = (def.validate)(def.name, value)?;
        let var = self
            .vars
            .get_mut(def.name)
            .expect("every built-in variable has a value");
        if startup {
            var.reset = value.clone();
        }
        if var.value != value {
            var.value = value;
            if def.report {
                self.pending_reports.insert(def.name);
            }
        }
        Ok(())
    }

    /// Returns a variable to its session default (`RESET name`).
    pub fn reset(&mut self, name: &str) -> Result<(), AdapterError> {
        let Some(def) = lookup(name) else {
            if is_custom_name(name) {
                self.custom.insert(name.to_lowercase(), String::new());
                return Ok(());
            }
            return Err(unrecognized(name));
        };
        if def.read_only {
            return Err(read_only(def.name));
        }
        self.reset_var(def);
        Ok(())
    }

    /// Returns every settable variable to its session default (`RESET ALL`).
    pub fn reset_all(&mut self) {
        for def in VARS.iter().filter(|def| !def.read_only) {
            self.reset_var(def);
        }
        for value in self.custom.values_mut() {
            value.clear();
        }
    }

    fn reset_var(&mut self, def: &'static VarDef) {
        let var = self
            .vars
            .get_mut(def.name)
            .expect("every built-in variable has a value");
        if var.value != var.reset {
            var.value = var.reset.clone();
            if def.report {
                self.pending_reports.insert(def.name);
            }
        }
    }

    /// A copy of every variable, for [`Session::restore_vars`].
    pub fn snapshot_vars(&self) -> SessionVars {
        SessionVars {
            vars: self.vars.clone(),
            custom: self.custom.clone(),
        }
    }

    /// Puts back the variables of a [`Session::snapshot_vars`] (ROLLBACK, or the end of
    /// a transaction that used `SET LOCAL`). Reported variables whose value changes are
    /// reported again, as PostgreSQL sends ParameterStatus after a rollback.
    pub fn restore_vars(&mut self, snapshot: SessionVars) {
        for def in VARS.iter().filter(|def| def.report) {
            let now = self.vars.get(def.name).map(|v| &v.value);
            let then = snapshot.vars.get(def.name).map(|v| &v.value);
            if now != then {
                self.pending_reports.insert(def.name);
            }
        }
        self.vars = snapshot.vars;
        self.custom = snapshot.custom;
    }

    /// Every built-in variable as `(name, value, description)`, sorted by name: `SHOW ALL`.
    pub fn all(&self) -> impl Iterator<Item = (&'static str, &str, &'static str)> + '_ {
        VARS.iter().map(|def| {
            let value = self.vars.get(def.name).map_or("", |v| v.value.as_str());
            (def.name, value, def.description)
        })
    }

    /// The `(name, value)` pairs sent as ParameterStatus during startup.
    pub fn startup_parameters(&self) -> Vec<(&'static str, String)> {
        VARS.iter()
            .filter(|def| def.report)
            .map(|def| (def.name, self.get(def.name).unwrap_or_default().to_string()))
            .collect()
    }

    /// The reported variables whose value changed since the last call, with their new
    /// values; the front end sends each as ParameterStatus before ReadyForQuery.
    pub fn take_reportable_changes(&mut self) -> Vec<(&'static str, String)> {
        std::mem::take(&mut self.pending_reports)
            .into_iter()
            .map(|name| (name, self.get(name).unwrap_or_default().to_string()))
            .collect()
    }

    /// The cluster statements run on (`SET cluster = ...`).
    pub fn cluster(&self) -> &str {
        self.get("cluster").unwrap_or("quickstart")
    }

    /// `application_name`, as the client set it.
    pub fn application_name(&self) -> &str {
        self.get("application_name").unwrap_or_default()
    }

    /// Whether reads wait for every input's upper (`strict serializable`, the default)
    /// or read the freshest complete time (`serializable`).
    pub fn is_strict_serializable(&self) -> bool {
        self.get("transaction_isolation") == Some("strict serializable")
    }

    /// `extra_float_digits` (-15 ..= 3): above 0, floats print in their shortest exact
    /// form; otherwise with that many digits fewer (or more) than the type's precision.
    pub fn extra_float_digits(&self) -> i32 {
        self.get("extra_float_digits")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
    }

    /// `max_subscribe_buffer_rows`: the rows a subscription may queue for its client.
    pub fn max_subscribe_buffer_rows(&self) -> usize {
        self.get("max_subscribe_buffer_rows")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000)
    }

    /// `statement_timeout`, or `None` when it is 0 (disabled).
    pub fn statement_timeout(&self) -> Option<Duration> {
        let ms = parse_duration_ms(self.get("statement_timeout")?)?;
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    /// The tick this session asks for with `SET tick_interval`, if it did.
    pub fn tick_interval(&self) -> Option<Duration> {
        parse_tick_interval(self.get("tick_interval")?).map(Duration::from_millis)
    }

    /// Applies the startup packet's `options` (`-c name=value`, `--name=value`, as libpq's
    /// PGOPTIONS sends them). Returns the settings that failed, with why.
    pub fn apply_startup_options(&mut self, options: &str) -> Vec<AdapterError> {
        let mut errors = Vec::new();
        for setting in parse_startup_options(options) {
            let result = match setting {
                Ok((name, value)) => self.set_startup(&name, &value),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                errors.push(e);
            }
        }
        errors
    }
}

/// Splits libpq's `options` string into `name=value` settings. Words are separated by
/// whitespace; a backslash escapes the next character; `-c name=value`, `-cname=value`
/// and `--name=value` set a variable, where a `-` in the name means `_`.
fn parse_startup_options(options: &str) -> Vec<Result<(String, String), AdapterError>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }

    let mut settings = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let setting = if word == "-c" {
            words.next()
        } else if let Some(rest) = word.strip_prefix("--") {
            Some(rest.to_string())
        } else if let Some(rest) = word.strip_prefix("-c") {
            Some(rest.to_string())
        } else {
            settings.push(Err(invalid_option(&word)));
            continue;
        };
        let Some(setting) = setting else {
            settings.push(Err(invalid_option(&word)));
            continue;
        };
        match setting.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                settings.push(Ok((name.replace('-', "_"), value.to_string())))
            }
            _ => settings.push(Err(invalid_option(&setting))),
        }
    }
    settings
}

fn error(code: &str, message: String, hint: Option<&str>) -> AdapterError {
    AdapterError {
        code: code.to_string(),
        message,
        detail: None,
        hint: hint.map(str::to_string),
        position: None,
    }
}

fn unrecognized(name: &str) -> AdapterError {
    error(
        "42704",
        format!("unrecognized configuration parameter \"{name}\""),
        None,
    )
}

fn read_only(name: &str) -> AdapterError {
    error(
        "55P02",
        format!("parameter \"{name}\" cannot be changed"),
        None,
    )
}

fn invalid_value(name: &str, value: &str, hint: Option<&str>) -> AdapterError {
    error(
        "22023",
        format!("invalid value for parameter \"{name}\": \"{value}\""),
        hint,
    )
}

fn invalid_option(option: &str) -> AdapterError {
    error(
        "42601",
        format!("invalid command-line argument for server process: {option}"),
        Some("Use -c name=value or --name=value."),
    )
}

fn any(_name: &str, value: &str) -> Result<String, AdapterError> {
    Ok(value.to_string())
}

fn non_empty(name: &str, value: &str) -> Result<String, AdapterError> {
    if value.trim().is_empty() {
        return Err(invalid_value(name, value, None));
    }
    Ok(value.to_string())
}

/// Like PostgreSQL: printable ASCII only (others become `?`), at most 63 characters.
fn application_name(_name: &str, value: &str) -> Result<String, AdapterError> {
    Ok(value
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .take(63)
        .collect())
}

fn client_encoding(name: &str, value: &str) -> Result<String, AdapterError> {
    let folded: String = value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    match folded.as_str() {
        "utf8" | "unicode" => Ok("UTF8".to_string()),
        _ => Err(invalid_value(
            name,
            value,
            Some("Freshet only supports the UTF8 encoding."),
        )),
    }
}

fn message_level(name: &str, value: &str) -> Result<String, AdapterError> {
    let level = value.trim().to_ascii_lowercase();
    match level.as_str() {
        "debug5" | "debug4" | "debug3" | "debug2" | "debug1" | "log" | "notice" | "warning"
        | "error" | "info" => Ok(level),
        "debug" => Ok("debug2".to_string()),
        _ => Err(invalid_value(
            name,
            value,
            Some("Available values: debug5, debug4, debug3, debug2, debug1, log, notice, warning, error."),
        )),
    }
}

/// Only the ISO output style exists; the field order is kept for `SHOW`.
fn date_style(name: &str, value: &str) -> Result<String, AdapterError> {
    let mut order = "MDY";
    for token in value.split([',', ' ']).filter(|t| !t.is_empty()) {
        match token.to_ascii_uppercase().as_str() {
            "ISO" | "DEFAULT" => {}
            "MDY" | "US" | "NONEURO" | "NONEUROPEAN" => order = "MDY",
            "DMY" | "EURO" | "EUROPEAN" => order = "DMY",
            "YMD" => order = "YMD",
            _ => {
                return Err(invalid_value(
                    name,
                    value,
                    Some("Freshet only supports the ISO date style."),
                ))
            }
        }
    }
    Ok(format!("ISO, {order}"))
}

fn extra_float_digits(name: &str, value: &str) -> Result<String, AdapterError> {
    let n: i32 = value
        .trim()
        .parse()
        .map_err(|_| invalid_value(name, value, None))?;
    if !(-15..=3).contains(&n) {
        return Err(error(
            "22023",
            format!("{n} is outside the valid range for parameter \"{name}\" (-15 .. 3)"),
            None,
        ));
    }
    Ok(n.to_string())
}

fn interval_style(name: &str, value: &str) -> Result<String, AdapterError> {
    if value.trim().eq_ignore_ascii_case("postgres") {
        return Ok("postgres".to_string());
    }
    Err(invalid_value(
        name,
        value,
        Some("Freshet only supports the postgres interval style."),
    ))
}

fn standard_conforming_strings(name: &str, value: &str) -> Result<String, AdapterError> {
    match repr::strconv::parse_bool(value.trim()) {
        Some(true) => Ok("on".to_string()),
        Some(false) => Err(error(
            "0A000",
            format!("setting \"{name}\" to \"{value}\" is not supported"),
            Some("Freshet only supports standard conforming strings."),
        )),
        None => Err(invalid_value(name, value, None)),
    }
}

/// Sessions run in UTC; the names of UTC are accepted and shown as `UTC`.
fn time_zone(name: &str, value: &str) -> Result<String, AdapterError> {
    let folded = value.trim().to_ascii_lowercase();
    match folded.as_str() {
        "utc" | "etc/utc" | "gmt" | "etc/gmt" | "z" | "zulu" | "uct" | "etc/uct" | "universal"
        | "etc/universal" | "0" | "+0" | "-0" | "00:00" | "+00" | "-00" | "+00:00" | "-00:00" => {
            Ok("UTC".to_string())
        }
        _ => Err(invalid_value(
            name,
            value,
            Some("Freshet only supports the UTC time zone."),
        )),
    }
}

fn positive_count(name: &str, value: &str) -> Result<String, AdapterError> {
    match value.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n.to_string()),
        _ => Err(invalid_value(
            name,
            value,
            Some("The value must be a positive integer."),
        )),
    }
}

fn transaction_isolation(name: &str, value: &str) -> Result<String, AdapterError> {
    let folded = value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    match folded.as_str() {
        "serializable" | "strict serializable" => Ok(folded),
        _ => Err(invalid_value(
            name,
            value,
            Some("Available values: serializable, strict serializable."),
        )),
    }
}

fn statement_timeout(name: &str, value: &str) -> Result<String, AdapterError> {
    let ms = parse_duration_ms(value).ok_or_else(|| {
        invalid_value(
            name,
            value,
            Some("Valid units for this parameter are \"us\", \"ms\", \"s\", \"min\", \"h\", and \"d\"."),
        )
    })?;
    if ms > i32::MAX as u64 {
        return Err(error(
            "22023",
            format!(
                "{value} is outside the valid range for parameter \"{name}\" (0 .. 2147483647)"
            ),
            None,
        ));
    }
    Ok(format_duration_ms(ms))
}

/// The longest tick a session or the system may ask for.
pub const MAX_TICK_INTERVAL_MS: u64 = 60_000;

/// `tick_interval`: a duration from 1 ms to a minute, or empty (the system's tick).
fn tick_interval(name: &str, value: &str) -> Result<String, AdapterError> {
    if value.trim().is_empty() {
        return Ok(String::new());
    }
    parse_tick_interval(value)
        .map(format_duration_ms)
        .ok_or_else(|| {
            invalid_value(
                name,
                value,
                Some("The tick is a duration from 1ms to 1min, as in '10ms' or '1s'."),
            )
        })
}

/// Parses a tick interval (`10ms`, `1s`, a bare number of milliseconds) within
/// 1 ms ..= [`MAX_TICK_INTERVAL_MS`].
pub fn parse_tick_interval(value: &str) -> Option<u64> {
    parse_duration_ms(value).filter(|ms| (1..=MAX_TICK_INTERVAL_MS).contains(ms))
}

/// Formats a tick interval as `SHOW` prints it.
pub fn format_tick_interval(ms: u64) -> String {
    format_duration_ms(ms)
}

/// Parses `100`, `100ms`, `5s`, `1 min`, `2h`, `1d` into milliseconds (a bare number is
/// milliseconds, as for PostgreSQL's `statement_timeout`).
fn parse_duration_ms(value: &str) -> Option<u64> {
    let value = value.trim();
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    let per_unit = match unit.trim() {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" => 1_000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    let ms = (number * per_unit).round();
    (ms.is_finite() && ms >= 0.0 && ms <= u64::MAX as f64).then_some(ms as u64)
}

/// Milliseconds in the largest unit that divides them, as `SHOW` prints: `0`, `5s`.
fn format_duration_ms(ms: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "min"),
        (1_000, "s"),
    ];
    if ms == 0 {
        return "0".to_string();
    }
    for (size, unit) in UNITS {
        if ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::new(7, 42, "alice", "db")
    }

    #[test]
    fn vars_are_sorted_for_show_all() {
        let names: Vec<String> = VARS.iter().map(|v| v.name.to_lowercase()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn every_default_passes_its_validator() {
        for def in VARS.iter().filter(|def| !def.read_only) {
            assert_eq!(
                (def.validate)(def.name, def.default).as_deref(),
                Ok(def.default),
                "default of {}",
                def.name
            );
        }
    }

    #[test]
    fn defaults_follow_postgres() {
        let s = session();
        assert_eq!(s.conn_id, 7);
        assert_eq!(s.secret_key, 42);
        assert_eq!(s.user, "alice");
        assert_eq!(s.database, "db");
        assert_eq!(s.transaction, TransactionStatus::Idle);
        for (name, value) in [
            ("server_version", "15.0"),
            ("server_version_num", "150000"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("TimeZone", "UTC"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("application_name", ""),
            ("search_path", "public"),
            ("transaction_isolation", "strict serializable"),
            ("extra_float_digits", "1"),
            ("statement_timeout", "0"),
            ("client_min_messages", "notice"),
            ("IntervalStyle", "postgres"),
            ("is_superuser", "off"),
            ("session_authorization", "alice"),
            ("cluster", "quickstart"),
        ] {
            assert_eq!(s.get(name), Some(value), "{name}");
        }
        assert!(s.is_strict_serializable());
        assert_eq!(s.statement_timeout(), None);
        assert_eq!(s.cluster(), "quickstart");
    }

    #[test]
    fn names_are_case_insensitive() {
        let mut s = session();
        assert_eq!(s.get("datestyle"), Some("ISO, MDY"));
        assert_eq!(s.get("TIMEZONE"), Some("UTC"));
        s.set("APPLICATION_NAME", "psql").unwrap();
        assert_eq!(s.get("application_name"), Some("psql"));
        assert_eq!(s.get("no_such_thing"), None);
    }

    #[test]
    fn unknown_variable_is_42704() {
        let mut s = session();
        let err = s.set("no_such_thing", "1").unwrap_err();
        assert_eq!(err.code, "42704");
        assert_eq!(
            err.message,
            "unrecognized configuration parameter \"no_such_thing\""
        );
        assert_eq!(s.reset("no_such_thing").unwrap_err().code, "42704");
    }

    #[test]
    fn read_only_variables_are_55p02() {
        let mut s = session();
        for name in [
            "server_version",
            "server_version_num",
            "server_encoding",
            "integer_datetimes",
            "is_superuser",
            "session_authorization",
        ] {
            let err = s.set(name, "x").unwrap_err();
            assert_eq!(err.code, "55P02", "{name}");
            assert_eq!(
                err.message,
                format!("parameter \"{name}\" cannot be changed")
            );
            assert_eq!(s.reset(name).unwrap_err().code, "55P02");
        }
        let err = s.set("SERVER_VERSION", "16").unwrap_err();
        assert_eq!(
            err.message,
            "parameter \"server_version\" cannot be changed"
        );
        assert_eq!(s.get("server_version"), Some("15.0"));
    }

    #[test]
    fn client_encoding_accepts_only_utf8() {
        let mut s = session();
        for ok in ["UTF8", "utf8", "UNICODE", "utf-8", "Unicode"] {
            s.set("client_encoding", ok).unwrap();
            assert_eq!(s.get("client_encoding"), Some("UTF8"));
        }
        let err = s.set("client_encoding", "LATIN1").unwrap_err();
        assert_eq!(err.code, "22023");
        assert_eq!(
            err.message,
            "invalid value for parameter \"client_encoding\": \"LATIN1\""
        );
        assert!(err.hint.is_some());
    }

    #[test]
    fn transaction_isolation_values() {
        let mut s = session();
        s.set("transaction_isolation", "SERIALIZABLE").unwrap();
        assert_eq!(s.get("transaction_isolation"), Some("serializable"));
        assert!(!s.is_strict_serializable());
        s.set("transaction_isolation", "strict   Serializable")
            .unwrap();
        assert_eq!(s.get("transaction_isolation"), Some("strict serializable"));
        let err = s
            .set("transaction_isolation", "read committed")
            .unwrap_err();
        assert_eq!(err.code, "22023");
        assert_eq!(s.get("transaction_isolation"), Some("strict serializable"));
    }

    #[test]
    fn values_are_validated_and_normalised() {
        let mut s = session();
        s.set("DateStyle", "iso").unwrap();
        assert_eq!(s.get("DateStyle"), Some("ISO, MDY"));
        s.set("DateStyle", "ISO, DMY").unwrap();
        assert_eq!(s.get("DateStyle"), Some("ISO, DMY"));
        assert_eq!(s.set("DateStyle", "German").unwrap_err().code, "22023");

        s.set("TimeZone", "Etc/UTC").unwrap();
        assert_eq!(s.get("TimeZone"), Some("UTC"));
        assert_eq!(
            s.set("TimeZone", "Europe/Berlin").unwrap_err().code,
            "22023"
        );

        s.set("extra_float_digits", "3").unwrap();
        assert_eq!(s.get("extra_float_digits"), Some("3"));
        let err = s.set("extra_float_digits", "4").unwrap_err();
        assert_eq!(
            err.message,
            "4 is outside the valid range for parameter \"extra_float_digits\" (-15 .. 3)"
        );
        assert_eq!(s.set("extra_float_digits", "x").unwrap_err().code, "22023");

        s.set("statement_timeout", "5000").unwrap();
        assert_eq!(s.get("statement_timeout"), Some("5s"));
        assert_eq!(s.statement_timeout(), Some(Duration::from_secs(5)));
        s.set("statement_timeout", "1500ms").unwrap();
        assert_eq!(s.get("statement_timeout"), Some("1500ms"));
        s.set("statement_timeout", "2 min").unwrap();
        assert_eq!(s.get("statement_timeout"), Some("2min"));
        s.set("statement_timeout", "0").unwrap();
        assert_eq!(s.statement_timeout(), None);
        assert_eq!(
            s.set("statement_timeout", "soon").unwrap_err().code,
            "22023"
        );

        s.set("client_min_messages", "WARNING").unwrap();
        assert_eq!(s.get("client_min_messages"), Some("warning"));
        assert_eq!(
            s.set("client_min_messages", "loud").unwrap_err().code,
            "22023"
        );

        s.set("IntervalStyle", "Postgres").unwrap();
        assert_eq!(
            s.set("IntervalStyle", "iso_8601").unwrap_err().code,
            "22023"
        );

        s.set("standard_conforming_strings", "true").unwrap();
        assert_eq!(s.get("standard_conforming_strings"), Some("on"));
        assert_eq!(
            s.set("standard_conforming_strings", "off")
                .unwrap_err()
                .code,
            "0A000"
        );

        s.set("application_name", "héllo\tworld").unwrap();
        assert_eq!(s.get("application_name"), Some("h?llo?world"));
        s.set("application_name", &"x".repeat(100)).unwrap();
        assert_eq!(s.application_name().len(), 63);

        s.set("cluster", "c2").unwrap();
        assert_eq!(s.cluster(), "c2");
        assert_eq!(s.set("cluster", "").unwrap_err().code, "22023");
        s.set("search_path", "public, mz_catalog").unwrap();
        assert_eq!(s.get("search_path"), Some("public, mz_catalog"));
    }

    #[test]
    fn failed_set_leaves_the_value_alone() {
        let mut s = session();
        s.set("extra_float_digits", "2").unwrap();
        assert!(s.set("extra_float_digits", "99").is_err());
        assert_eq!(s.get("extra_float_digits"), Some("2"));
        assert!(s.take_reportable_changes().is_empty());
    }

    #[test]
    fn reset_returns_to_the_startup_value() {
        let mut s = session();
        s.set_startup("application_name", "psql").unwrap();
        s.set("application_name", "other").unwrap();
        s.set("search_path", "x").unwrap();
        s.reset("application_name").unwrap();
        assert_eq!(s.get("application_name"), Some("psql"));
        assert_eq!(s.get("search_path"), Some("x"));
        s.set("application_name", "other").unwrap();
        s.reset_all();
        assert_eq!(s.get("application_name"), Some("psql"));
        assert_eq!(s.get("search_path"), Some("public"));
        assert_eq!(s.get("server_version"), Some("15.0"));
    }

    #[test]
    fn custom_variables() {
        let mut s = session();
        assert_eq!(s.get("myapp.user_id"), None);
        s.set("MyApp.user_id", "5").unwrap();
        assert_eq!(s.get("myapp.user_id"), Some("5"));
        s.reset("myapp.user_id").unwrap();
        assert_eq!(s.get("myapp.user_id"), Some(""));
        assert_eq!(s.set("myapp.", "1").unwrap_err().code, "42704");
        assert!(s.all().all(|(name, _, _)| name != "myapp.user_id"));
    }

    #[test]
    fn show_all_lists_every_variable() {
        let s = session();
        let all: Vec<_> = s.all().collect();
        assert_eq!(all.len(), VARS.len());
        assert_eq!(all[0].0, "application_name");
        assert!(all.contains(&(
            "DateStyle",
            "ISO, MDY",
            "Sets the display format for date and time values."
        )));
        assert!(all
            .iter()
            .all(|(_, _, description)| !description.is_empty()));
    }

    #[test]
    fn startup_parameters_are_the_reported_variables() {
        let mut s = session();
        s.set_startup("application_name", "psql").unwrap();
        let params = s.startup_parameters();
        let names: Vec<&str> = params.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            vec![
                "application_name",
                "client_encoding",
                "DateStyle",
                "integer_datetimes",
                "IntervalStyle",
                "is_superuser",
                "server_encoding",
                "server_version",
                "session_authorization",
                "standard_conforming_strings",
                "TimeZone",
            ]
        );
        assert!(params.contains(&("application_name", "psql".to_string())));
        assert!(params.contains(&("session_authorization", "alice".to_string())));
        assert!(params.contains(&("server_version", "15.0".to_string())));
    }

    #[test]
    fn changes_of_reported_variables_are_reported_once() {
        let mut s = session();
        s.set("application_name", "a").unwrap();
        s.set("TimeZone", "utc").unwrap(); // unchanged: UTC
        s.set("search_path", "x").unwrap(); // not reported
        s.set("DateStyle", "ISO, DMY").unwrap();
        assert_eq!(
            s.take_reportable_changes(),
            vec![
                ("DateStyle", "ISO, DMY".to_string()),
                ("application_name", "a".to_string()),
            ]
        );
        assert!(s.take_reportable_changes().is_empty());
        s.reset_all();
        assert_eq!(
            s.take_reportable_changes(),
            vec![
                ("DateStyle", "ISO, MDY".to_string()),
                ("application_name", String::new()),
            ]
        );
    }

    #[test]
    fn startup_options() {
        let mut s = session();
        let errors = s.apply_startup_options(
            "-c cluster=c2 --application-name=my\\ app -cextra_float_digits=3 --bogus=1 junk",
        );
        assert_eq!(s.cluster(), "c2");
        assert_eq!(s.get("application_name"), Some("my app"));
        assert_eq!(s.get("extra_float_digits"), Some("3"));
        let codes: Vec<&str> = errors.iter().map(|e| e.code.as_str()).collect();
        assert_eq!(codes, vec!["42704", "42601"]);
        s.set("cluster", "c3").unwrap();
        s.reset("cluster").unwrap();
        assert_eq!(s.cluster(), "c2");
    }

    #[test]
    fn restore_vars_undoes_sets_and_reports_the_changes() {
        let mut s = session();
        s.set("application_name", "before").unwrap();
        s.set("myapp.x", "1").unwrap();
        s.take_reportable_changes();
        let snapshot = s.snapshot_vars();
        s.set("application_name", "during").unwrap();
        s.set("search_path", "other").unwrap();
        s.set("myapp.x", "2").unwrap();
        s.set("myapp.y", "3").unwrap();
        s.take_reportable_changes();
        s.restore_vars(snapshot.clone());
        assert_eq!(s.get("application_name"), Some("before"));
        assert_eq!(s.get("search_path"), Some("public"));
        assert_eq!(s.get("myapp.x"), Some("1"));
        assert_eq!(s.get("myapp.y"), None);
        assert_eq!(
            s.take_reportable_changes(),
            vec![("application_name", "before".to_string())]
        );
        assert_eq!(s.snapshot_vars(), snapshot);
        // Restoring what is already there reports nothing.
        s.restore_vars(snapshot);
        assert!(s.take_reportable_changes().is_empty());
    }

    #[test]
    fn copy_from_takes_one_variable() {
        let mut s = session();
        let mut at_commit = s.snapshot_vars();
        s.set("application_name", "kept").unwrap();
        s.set("search_path", "local_only").unwrap();
        s.set("myapp.kept", "1").unwrap();
        at_commit.copy_from(&s, "APPLICATION_NAME");
        at_commit.copy_from(&s, "MyApp.Kept");
        at_commit.copy_from(&s, "no_such_thing");
        s.restore_vars(at_commit);
        assert_eq!(s.get("application_name"), Some("kept"));
        assert_eq!(s.get("search_path"), Some("public"));
        assert_eq!(s.get("myapp.kept"), Some("1"));
    }

    #[test]
    fn extra_float_digits_accessor() {
        let mut s = session();
        assert_eq!(s.extra_float_digits(), 1);
        s.set("extra_float_digits", "-3").unwrap();
        assert_eq!(s.extra_float_digits(), -3);
    }

    #[test]
    fn transaction_status_bytes() {
        assert_eq!(TransactionStatus::Idle.ready_for_query_byte(), b'I');
        assert_eq!(TransactionStatus::InBlock.ready_for_query_byte(), b'T');
        assert_eq!(TransactionStatus::Failed.ready_for_query_byte(), b'E');
    }

    #[test]
    fn conn_ids_are_distinct() {
        let a = allocate_conn_id();
        let b = allocate_conn_id();
        assert_ne!(a, b);
        assert_ne!(a, 0);
    }

    #[test]
    fn version_string_names_freshet() {
        let v = version_string();
        assert!(v.starts_with("PostgreSQL 15.0 (Freshet "), "{v}");
    }
}
