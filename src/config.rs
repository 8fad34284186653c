//! One `Config`, read from the environment. Every problem names its variable.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use secrecy::SecretString;

use crate::budget::RateLimit;
use crate::domain::{DeletePolicy, LocationId};

/// A start-up error: one line that names the variable and says what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

fn invalid(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The one location synced with a Private Integration token (no OAuth).
#[derive(Clone, Debug)]
pub struct SingleLocation {
    pub location_id: LocationId,
    pub ghl_token: SecretString,
    pub holded_key: SecretString,
}

/// Marketplace-app credentials (the OAuth install); the `appId` filter on webhooks uses the
/// client id too.
#[derive(Clone, Debug)]
pub struct MarketplaceApp {
    pub client_id: String,
    pub client_secret: SecretString,
    pub public_url: url::Url,
    /// Host of the consent screen (white-label agencies use their own).
    pub marketplace_url: url::Url,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen_addr: SocketAddr,
    pub database_url: String,
    pub ghl_api_base: url::Url,
    pub holded_api_base: url::Url,
    /// PEM text overriding the embedded official keys.
    pub ghl_webhook_ed25519_key: Option<String>,
    pub ghl_webhook_rsa_key: Option<String>,
    pub single_location: Option<SingleLocation>,
    pub marketplace_app: Option<MarketplaceApp>,
    pub encryption_key: Option<SecretString>,
    pub admin_token: Option<SecretString>,
    pub sweep_interval: Duration,
    pub workers: usize,
    pub log_format: LogFormat,
    pub delete_policy: DeletePolicy,
    pub webhook_replay_window: Duration,
    pub webhook_settle: Duration,
    pub token_check_interval: Duration,
    pub event_retention: Duration,
    pub upstream_timeout: Duration,
    pub ghl_rate_limit: RateLimit,
    pub ghl_daily_limit: u32,
    pub holded_rate_limit: RateLimit,
    pub max_attempts: u32,
    pub retry_base_delay: Duration,
    pub retry_max_delay: Duration,
    pub work_lease: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars().collect())
    }

    /// Reads the configuration from an explicit variable map (tests, the demo).
    pub fn from_vars(vars: HashMap<String, String>) -> Result<Self, ConfigError> {
        let vars = Vars(vars);
        Ok(Config {
            listen_addr: vars.parse("LISTEN_ADDR", "0.0.0.0:8080", |raw| {
                raw.parse::<SocketAddr>().map_err(|e| e.to_string())
            })?,
            database_url: vars.database_url()?,
            ghl_api_base: vars.url("GHL_API_BASE", "https://services.leadconnectorhq.com")?,
            holded_api_base: vars.url("HOLDED_API_BASE", "https://api.holded.com")?,
            ghl_webhook_ed25519_key: vars.get("GHL_WEBHOOK_ED25519_KEY"),
            ghl_webhook_rsa_key: vars.get("GHL_WEBHOOK_RSA_KEY"),
            single_location: vars.single_location()?,
            marketplace_app: vars.marketplace_app()?,
            encryption_key: vars.encryption_key()?,
            admin_token: vars.get("ADMIN_TOKEN").map(SecretString::from),
            sweep_interval: vars.duration("SWEEP_INTERVAL", "15m")?,
            workers: vars.parse("WORKERS", "4", |raw| match raw.parse::<usize>() {
                Ok(n) if (1..=256).contains(&n) => Ok(n),
                _ => Err("must be a whole number from 1 to 256".into()),
            })?,
            log_format: vars.log_format()?,
            delete_policy: vars.parse("DELETE_POLICY", "tag", |raw| {
                DeletePolicy::parse(raw).map_err(|e| e.0)
            })?,
            webhook_replay_window: vars.duration("WEBHOOK_REPLAY_WINDOW", "2h")?,
            webhook_settle: vars.parse("WEBHOOK_SETTLE", "250ms", settle)?,
            token_check_interval: vars.duration("TOKEN_CHECK_INTERVAL", "1m")?,
            event_retention: vars.duration("EVENT_RETENTION", "7d")?,
            upstream_timeout: vars.duration("UPSTREAM_TIMEOUT", "30s")?,
            ghl_rate_limit: vars.parse("GHL_RATE_LIMIT", "100/10s", RateLimit::parse)?,
            ghl_daily_limit: vars.parse("GHL_DAILY_LIMIT", "200000", positive)?,
            holded_rate_limit: vars.parse("HOLDED_RATE_LIMIT", "5/1s", RateLimit::parse)?,
            max_attempts: vars.parse("SYNC_MAX_ATTEMPTS", "12", positive)?,
            retry_base_delay: vars.duration("RETRY_BASE_DELAY", "1s")?,
            retry_max_delay: vars.duration("RETRY_MAX_DELAY", "1h")?,
            work_lease: vars.duration("WORK_LEASE", "120s")?,
        })
        .and_then(Config::checked)
    }

    fn checked(self) -> Result<Self, ConfigError> {
        // Dedupe keys must outlive the replay window, or a replay just inside the window
        // would no longer be recognised as a duplicate.
        if self.event_retention <= self.webhook_replay_window {
            return Err(invalid(
                "EVENT_RETENTION",
                "must be longer than WEBHOOK_REPLAY_WINDOW",
            ));
        }
        // A sync makes several upstream calls within 3/4 of its lease; a lease shorter than
        // two timeouts would let another replica take an item that is still in flight.
        if self.work_lease < self.upstream_timeout * 2 {
            return Err(invalid(
                "WORK_LEASE",
                "must be at least twice UPSTREAM_TIMEOUT",
            ));
        }
        Ok(self)
    }

    /// What is missing before anything can sync, for the one start-up warning.
    pub fn missing_sync_settings(&self) -> Option<&'static str> {
        if self.single_location.is_none() && self.marketplace_app.is_none() {
            Some(
                "no location to sync: set GHL_LOCATION_ID, GHL_PRIVATE_TOKEN and HOLDED_API_KEY \
                 (webhooks are still verified and stored, and sync once they are set)",
            )
        } else {
            None
        }
    }
}

fn positive(raw: &str) -> Result<u32, String> {
    raw.parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| "must be a whole number above zero".into())
}

/// Zero turns coalescing off; more than a few seconds would make every update visibly late.
fn settle(raw: &str) -> Result<Duration, String> {
    match humantime::parse_duration(raw) {
        Ok(d) if d <= Duration::from_secs(5) => Ok(d),
        Ok(_) => Err("must be at most 5s".into()),
        Err(e) => Err(format!(
            "{e}; use a duration such as 250ms, or 0s to turn it off"
        )),
    }
}

struct Vars(HashMap<String, String>);

impl Vars {
    /// A set, non-blank value; blank counts as unset so `FOO=` in a .env file means default.
    fn get(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn parse<T>(
        &self,
        name: &'static str,
        default: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let raw = self.get(name).unwrap_or_else(|| default.to_owned());
        parse(&raw).map_err(|problem| invalid(name, format!("{problem} (got {raw:?})")))
    }

    fn url(&self, name: &'static str, default: &str) -> Result<url::Url, ConfigError> {
        self.parse(name, default, |raw| {
            let url = url::Url::parse(raw).map_err(|e| e.to_string())?;
            match url.scheme() {
                "http" | "https" => Ok(url),
                _ => Err("must be an http:// or https:// URL".into()),
            }
        })
    }

    fn duration(&self, name: &'static str, default: &str) -> Result<Duration, ConfigError> {
        self.parse(name, default, |raw| match humantime::parse_duration(raw) {
            Ok(d) if !d.is_zero() => Ok(d),
            Ok(_) => Err("must be longer than zero".into()),
            Err(e) => Err(format!("{e}; use a duration such as 30s, 15m or 2h")),
        })
    }

    fn database_url(&self) -> Result<String, ConfigError> {
        self.parse("DATABASE_URL", "sqlite://data/ghl-holded-sync.db", |raw| {
            if raw.starts_with("sqlite:")
                || raw.starts_with("postgres://")
                || raw.starts_with("postgresql://")
            {
                Ok(raw.to_owned())
            } else {
                Err("must start with sqlite:// or postgres://".into())
            }
        })
    }

    fn log_format(&self) -> Result<LogFormat, ConfigError> {
        use std::io::IsTerminal;
        let default = if std::io::stdout().is_terminal() {
            "pretty"
        } else {
            "json"
        };
        self.parse("LOG_FORMAT", default, |raw| match raw {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            _ => Err("must be pretty or json".into()),
        })
    }

    /// All three single-location variables, or none: a half-configured location would
    /// accept webhooks it can never sync.
    fn single_location(&self) -> Result<Option<SingleLocation>, ConfigError> {
        let names = ["GHL_LOCATION_ID", "GHL_PRIVATE_TOKEN", "HOLDED_API_KEY"];
        let values: Vec<Option<String>> = names.iter().map(|n| self.get(n)).collect();
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        if let Some(missing) = names.iter().zip(&values).find(|(_, v)| v.is_none()) {
            return Err(invalid(
                missing.0,
                "required when any of GHL_LOCATION_ID, GHL_PRIVATE_TOKEN, HOLDED_API_KEY is set",
            ));
        }
        let [location, token, key]: [Option<String>; 3] =
            values.try_into().expect("three names, three values");
        let location_id = LocationId::parse(&location.unwrap_or_default())
            .map_err(|e| invalid("GHL_LOCATION_ID", e.0))?;
        Ok(Some(SingleLocation {
            location_id,
            ghl_token: SecretString::from(token.unwrap_or_default()),
            holded_key: SecretString::from(key.unwrap_or_default()),
        }))
    }

    fn marketplace_app(&self) -> Result<Option<MarketplaceApp>, ConfigError> {
        let Some(client_id) = self.get("GHL_CLIENT_ID") else {
            return Ok(None);
        };
        let client_secret = self
            .get("GHL_CLIENT_SECRET")
            .ok_or_else(|| invalid("GHL_CLIENT_SECRET", "required when GHL_CLIENT_ID is set"))?;
        if self.get("PUBLIC_URL").is_none() {
            return Err(invalid("PUBLIC_URL", "required when GHL_CLIENT_ID is set"));
        }
        if self.get("ENCRYPTION_KEY").is_none() {
            return Err(invalid(
                "ENCRYPTION_KEY",
                "required when GHL_CLIENT_ID is set: tokens and Holded keys are stored encrypted",
            ));
        }
        Ok(Some(MarketplaceApp {
            client_id,
            client_secret: SecretString::from(client_secret),
            public_url: self.url("PUBLIC_URL", "")?,
            marketplace_url: self
                .url("GHL_MARKETPLACE_URL", "https://marketplace.gohighlevel.com")?,
        }))
    }

    fn encryption_key(&self) -> Result<Option<SecretString>, ConfigError> {
        let Some(raw) = self.get("ENCRYPTION_KEY") else {
            return Ok(None);
        };
        // The value is never echoed: it is a secret even when malformed.
        match base64::engine::general_purpose::STANDARD.decode(&raw) {
            Ok(bytes) if bytes.len() == 32 => Ok(Some(SecretString::from(raw))),
            _ => Err(invalid(
                "ENCRYPTION_KEY",
                "must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_start_without_any_setting() {
        let config = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(config.listen_addr.port(), 8080);
        assert_eq!(config.database_url, "sqlite://data/ghl-holded-sync.db");
        assert_eq!(config.workers, 4);
        assert_eq!(config.sweep_interval, Duration::from_secs(900));
        assert_eq!(config.webhook_replay_window, Duration::from_secs(7200));
        assert!(config.missing_sync_settings().is_some());
    }

    #[test]
    fn errors_name_the_variable() {
        let cases = [
            ("WORKERS", "zero", "WORKERS"),
            ("SWEEP_INTERVAL", "soon", "SWEEP_INTERVAL"),
            ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
            ("LOG_FORMAT", "xml", "LOG_FORMAT"),
            ("DELETE_POLICY", "purge", "DELETE_POLICY"),
            ("GHL_API_BASE", "ftp://x", "GHL_API_BASE"),
            ("LISTEN_ADDR", "localhost", "LISTEN_ADDR"),
            ("GHL_RATE_LIMIT", "100", "GHL_RATE_LIMIT"),
            ("HOLDED_RATE_LIMIT", "0/1s", "HOLDED_RATE_LIMIT"),
            ("GHL_DAILY_LIMIT", "-1", "GHL_DAILY_LIMIT"),
            ("SYNC_MAX_ATTEMPTS", "0", "SYNC_MAX_ATTEMPTS"),
            ("WORK_LEASE", "10s", "WORK_LEASE"),
        ];
        for (name, value, expected) in cases {
            let err = Config::from_vars(vars(&[(name, value)])).unwrap_err();
            assert_eq!(err.variable, expected, "{name}={value}");
            assert!(err.to_string().starts_with(expected));
        }
    }

    #[test]
    fn single_location_needs_all_three() {
        let err = Config::from_vars(vars(&[("GHL_LOCATION_ID", "loc1")])).unwrap_err();
        assert_eq!(err.variable, "GHL_PRIVATE_TOKEN");
        let config = Config::from_vars(vars(&[
            ("GHL_LOCATION_ID", "loc1"),
            ("GHL_PRIVATE_TOKEN", "pit-123"),
            ("HOLDED_API_KEY", "hk"),
        ]))
        .unwrap();
        let single = config.single_location.unwrap();
        assert_eq!(single.location_id.as_str(), "loc1");
        assert_eq!(single.ghl_token.expose_secret(), "pit-123");
    }

    #[test]
    fn encryption_key_errors_never_echo_the_value() {
        let err = Config::from_vars(vars(&[("ENCRYPTION_KEY", "hunter2-secret")])).unwrap_err();
        assert_eq!(err.variable, "ENCRYPTION_KEY");
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn secrets_are_not_printed_by_debug() {
        let config = Config::from_vars(vars(&[
            ("GHL_LOCATION_ID", "loc1"),
            ("GHL_PRIVATE_TOKEN", "pit-very-secret"),
            ("HOLDED_API_KEY", "holded-very-secret"),
            ("ADMIN_TOKEN", "admin-very-secret"),
        ]))
        .unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("very-secret"), "{printed}");
    }
}
