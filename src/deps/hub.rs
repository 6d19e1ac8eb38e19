//! The dbt package hub: its JSON index (`api/v1/index.json`, every package
//! name), one JSON per package (`api/v1/<org>/<name>.json`, every version
//! with its project name, its own packages, its `require_dbt_version` and
//! its tarball's URL), and tarball downloads. The hub's address is dbt's
//! setting, the `DBT_PACKAGE_HUB_URL` environment variable.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use serde_json::Value as Json;

use crate::error::{Error, ErrorKind, Result};

pub const HUB_URL_VAR: &str = "DBT_PACKAGE_HUB_URL";
pub const DEFAULT_HUB_URL: &str = "https://hub.getdbt.com/";

/// Largest tarball or index accepted.
const MAX_BODY: u64 = 256 * 1024 * 1024;
/// Tries of one request that failed to connect or read (dbt tries 5 times).
const ATTEMPTS: u32 = 3;

/// One version of a hub package, as the index lists it.
#[derive(Debug, Clone)]
pub struct HubVersion {
    /// The package's project name: the folder it is installed as.
    pub name: String,
    /// Its own `packages:` (transitive dependencies), as written there.
    pub packages: Json,
    pub tarball: String,
    pub require_dbt_version: Vec<String>,
}

/// A client of one hub, remembering what it read.
pub struct Hub {
    base: String,
    agent: ureq::Agent,
    index: Option<Vec<String>>,
    packages: BTreeMap<String, BTreeMap<String, HubVersion>>,
}

impl Hub {
    /// The hub at `DBT_PACKAGE_HUB_URL`, else dbt's public hub.
    pub fn from_env() -> Hub {
        let base = std::env::var(HUB_URL_VAR)
            .ok()
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| DEFAULT_HUB_URL.to_string());
        Hub::new(&base)
    }

    pub fn new(base: &str) -> Hub {
        let base = if base.ends_with('/') {
            base.to_string()
        } else {
            format!("{base}/")
        };
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(300)))
            .build();
        Hub {
            base,
            agent: config.into(),
            index: None,
            packages: BTreeMap::new(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// True when the hub lists `package` (`org/name`).
    pub fn lists(&mut self, package: &str) -> Result<bool> {
        if self.index.is_none() {
            let url = format!("{}api/v1/index.json", self.base);
            let body = self.get(&url, &format!("the package index of {}", self.base))?;
            let json: Json = parse_json(&body, &url)?;
            let names = json
                .as_array()
                .ok_or_else(|| bad_answer(&url, "a list of package names"))?
                .iter()
                .filter_map(|name| name.as_str().map(str::to_string))
                .collect();
            self.index = Some(names);
        }
        Ok(self
            .index
            .as_ref()
            .is_some_and(|names| names.iter().any(|n| n == package)))
    }

    /// Every version of `package` the hub has.
    pub fn versions(&mut self, package: &str) -> Result<&BTreeMap<String, HubVersion>> {
        if !self.packages.contains_key(package) {
            let url = format!("{}api/v1/{package}.json", self.base);
            let body = self.get(&url, &format!("the versions of {package}"))?;
            let json = parse_json(&body, &url)?;
            let versions = json
                .get("versions")
                .and_then(Json::as_object)
                .ok_or_else(|| bad_answer(&url, "an object with `versions`"))?;
            let mut found = BTreeMap::new();
            for (version, info) in versions {
                found.insert(version.clone(), hub_version(info, &url, version)?);
            }
            self.packages.insert(package.to_string(), found);
        }
        Ok(&self.packages[package])
    }

    /// Download `url` to `dest`; `what` says what it is in an error.
    pub fn download(&self, url: &str, dest: &Path, what: &str) -> Result<()> {
        let body = self.get(url, what)?;
        std::fs::write(dest, body).map_err(|e| Error::io(dest, e))
    }

    fn get(&self, url: &str, what: &str) -> Result<Vec<u8>> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(500 * u64::from(attempt)));
            }
            match self.agent.get(url).call() {
                Ok(response) => {
                    let mut body = Vec::new();
                    let read = response
                        .into_body()
                        .into_reader()
                        .take(MAX_BODY)
                        .read_to_end(&mut body);
                    match read {
                        Ok(_) => return Ok(body),
                        Err(err) => last = err.to_string(),
                    }
                }
                Err(ureq::Error::StatusCode(code)) => {
                    last = format!("the server answered HTTP {code}");
                    if code < 500 {
                        break;
                    }
                }
                Err(err) => last = err.to_string(),
            }
        }
        let hint = if url.starts_with(&self.base) {
            format!("check the network, or point {HUB_URL_VAR} at a reachable package hub")
        } else {
            "check the network and the URL".to_string()
        };
        Err(Error::new(
            ErrorKind::Io,
            format!("could not download {what} from {url}: {last}"),
        )
        .with_hint(hint))
    }
}

fn parse_json(body: &[u8], url: &str) -> Result<Json> {
    serde_json::from_slice(body).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("the package hub answered {url} with invalid JSON: {e}"),
        )
    })
}

fn bad_answer(url: &str, expected: &str) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("the package hub answered {url} with something else than {expected}"),
    )
}

fn hub_version(info: &Json, url: &str, version: &str) -> Result<HubVersion> {
    let text = |key: &str| info.get(key).and_then(Json::as_str).map(str::to_string);
    let name = text("name").ok_or_else(|| bad_answer(url, &format!("a `name` for {version}")))?;
    let tarball = info
        .get("downloads")
        .and_then(|d| d.get("tarball"))
        .and_then(Json::as_str)
        .ok_or_else(|| bad_answer(url, &format!("`downloads.tarball` for {version}")))?
        .to_string();
    let require_dbt_version = match info.get("require_dbt_version") {
        Some(Json::String(one)) => vec![one.clone()],
        Some(Json::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    Ok(HubVersion {
        name,
        packages: info.get("packages").cloned().unwrap_or(Json::Null),
        tarball,
        require_dbt_version,
    })
}
