//! package-lock.yml as dbt writes it: every installed package pinned (a hub
//! version, a git commit, a local path) with its project `name`, keys in
//! order, the list indented, and `sha1_hash`, the digest of the packages
//! spec it was made from, so an unchanged spec installs the lock again.

use serde_json::{Map, Value as Json};

use crate::base::hash::sha1_hex;
use crate::base::pyjson::python_json;
use crate::project::packages::{PackageSpec, Source};
use crate::project::yaml::{self, Kind, Yaml};

/// The digest dbt writes as `sha1_hash`: each package as its spec reads it
/// (with dbt's defaults, the entry as written under `unrendered`), as JSON
/// with sorted keys, the lines sorted, joined by newlines, sha1 in hex.
/// `rendered` gives a value's text with its `{{ }}` rendered.
pub fn spec_hash(specs: &[PackageSpec], rendered: &dyn Fn(&Json) -> Json) -> String {
    let mut lines: Vec<String> = specs
        .iter()
        .map(|spec| python_json(&sorted(&spec_json(spec, rendered))))
        .collect();
    lines.sort();
    sha1_hex(&lines.join("\n"))
}

fn spec_json(spec: &PackageSpec, rendered: &dyn Fn(&Json) -> Json) -> Json {
    let raw = spec.raw.as_object().cloned().unwrap_or_default();
    let field = |key: &str| raw.get(key).map(rendered);
    let mut out = Map::new();
    let mut put = |key: &str, value: Option<Json>, default: Json| {
        out.insert(key.to_string(), value.unwrap_or(default));
    };
    match &spec.source {
        Source::Local { .. } => put("local", field("local"), Json::Null),
        Source::Tarball { .. } => put("tarball", field("tarball"), Json::Null),
        Source::Git { .. } => {
            put("git", field("git"), Json::Null);
            put("revision", field("revision"), Json::Null);
            put("subdirectory", field("subdirectory"), Json::Null);
            put("warn-unpinned", field("warn-unpinned"), Json::Null);
        }
        Source::Hub { .. } => {
            put("package", field("package"), Json::Null);
            put("version", field("version"), Json::Null);
            let prerelease = field("install_prerelease").or_else(|| field("install-prerelease"));
            put("install_prerelease", prerelease, Json::Bool(false));
        }
    }
    // dbt leaves out a `name` that is not set, so that adding the field did
    // not change every project's hash.
    if let Some(name) = field("name").filter(|n| !n.is_null()) {
        out.insert("name".to_string(), name);
    }
    // dbt's own key is `install_prerelease`; its docs spell it with a dash.
    let mut unrendered = raw;
    if let Some(value) = unrendered.remove("install-prerelease") {
        unrendered.insert("install_prerelease".to_string(), value);
    }
    out.insert("unrendered".to_string(), Json::Object(unrendered));
    Json::Object(out)
}

/// `value` with the keys of every object in order, as `json.dumps(...,
/// sort_keys=True)` writes them.
fn sorted(value: &Json) -> Json {
    match value {
        Json::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Json::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Json::Array(items) => Json::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// One pinned package as the lock lists it.
#[derive(Debug, Clone, PartialEq)]
pub enum Locked {
    Local {
        path: String,
    },
    Git {
        url: String,
        commit: String,
        subdirectory: Option<String>,
    },
    Hub {
        package: String,
        version: String,
    },
    Tarball {
        url: String,
    },
}

/// The text of package-lock.yml.
pub fn write(packages: &[(Locked, String)], hash: &str) -> String {
    let mut out = String::from("packages:\n");
    for (locked, name) in packages {
        let mut fields: Vec<(&str, String)> = vec![("name", name.clone())];
        match locked {
            Locked::Local { path } => fields.push(("local", path.clone())),
            Locked::Tarball { url } => fields.push(("tarball", url.clone())),
            Locked::Git {
                url,
                commit,
                subdirectory,
            } => {
                fields.push(("git", url.clone()));
                fields.push(("revision", commit.clone()));
                if let Some(sub) = subdirectory {
                    fields.push(("subdirectory", sub.clone()));
                }
            }
            Locked::Hub { package, version } => {
                fields.push(("package", package.clone()));
                fields.push(("version", version.clone()));
            }
        }
        fields.sort_by(|a, b| a.0.cmp(b.0));
        for (i, (key, value)) in fields.iter().enumerate() {
            let text = yaml::scalar_text(&Yaml::new(Kind::String(value.clone())));
            let lead = if i == 0 { "  - " } else { "    " };
            out.push_str(&format!("{lead}{key}: {text}\n"));
        }
    }
    out.push_str(&format!("sha1_hash: {hash}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::packages::parse_list;
    use std::path::Path;

    fn specs(text: &str) -> Vec<PackageSpec> {
        let path = Path::new("packages.yml");
        let doc = yaml::parse(text, path).unwrap();
        parse_list(doc.get("packages").unwrap(), path, text).unwrap()
    }

    /// The digests dbt-core 1.11 wrote for these packages.yml files.
    #[test]
    fn hash_is_dbts() {
        let same = |v: &Json| v.clone();
        let text = "packages:\n  - local: ../localpkg\n  - git: \"file:///tmp/deps-exp/gitrepo\"\n    \
                    revision: v1\n    subdirectory: sub\n  - package: org/hub_pkg\n    \
                    version: [\">=1.0.0\", \"<2.0.0\"]\n";
        assert_eq!(
            spec_hash(&specs(text), &same),
            "22f4ab14fdf72327819c2861aa3a8514c2be66d9"
        );
        let text = "packages:\n  - package: dbt-labs/dbt_utils\n    version: [\">=1.0.0\", \"<2.0.0\"]\n  \
                    - git: https://x/y.git\n    revision: v1\n    subdirectory: sub\n  - local: ../foo\n  \
                    - package: a/b\n    version: 1.2\n    install_prerelease: true\n  \
                    - git: https://x/z.git\n    revision: 1.0\n    warn-unpinned: false\n  \
                    - package: a/c\n    version: 1.0.0\n    name: c\n";
        assert_eq!(
            spec_hash(&specs(text), &same),
            "84cf35d5f5c019d5edc0b0c9503d0105b567bb81"
        );
    }

    #[test]
    fn lock_text_is_dbts() {
        let text = write(
            &[
                (
                    Locked::Local {
                        path: "../localpkg".into(),
                    },
                    "local_one".into(),
                ),
                (
                    Locked::Git {
                        url: "file:///tmp/deps-exp/gitrepo".into(),
                        commit: "4ac72f8dca4d18055a0f4d5d68424b68db06a691".into(),
                        subdirectory: Some("sub".into()),
                    },
                    "git_sub".into(),
                ),
                (
                    Locked::Hub {
                        package: "org/hub_pkg".into(),
                        version: "1.1.0".into(),
                    },
                    "hub_pkg".into(),
                ),
            ],
            "22f4ab14fdf72327819c2861aa3a8514c2be66d9",
        );
        assert_eq!(
            text,
            "packages:\n  - local: ../localpkg\n    name: local_one\n  - git: file:///tmp/deps-exp/gitrepo\n    \
             name: git_sub\n    revision: 4ac72f8dca4d18055a0f4d5d68424b68db06a691\n    subdirectory: sub\n  \
             - name: hub_pkg\n    package: org/hub_pkg\n    version: 1.1.0\n\
             sha1_hash: 22f4ab14fdf72327819c2861aa3a8514c2be66d9\n"
        );
    }
}
