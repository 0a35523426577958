//! CustomResourceDefinitions (`apiextensions.k8s.io/v1`): the definitions installed from the
//! stored CRD objects, which make the resource table dynamic.
//!
//! The [`Registry`] mirrors every stored CRD. It is updated on the write path whenever a CRD
//! object is written, so it always agrees with the store; the CRD controller
//! (`controllers::crd`) decides the `NamesAccepted`/`Established`/`Terminating` conditions and
//! the deletion of a definition's objects. A definition serves its resource (routing,
//! discovery, OpenAPI) once `Established` or `NamesAccepted`, in each `served` version, under
//! its `status.acceptedNames`.
//!
//! Bounded: [`crate::Config::max_crds`] definitions and [`crate::Config::max_crd_schema_bytes`]
//! of compiled schemas, all definitions together; a CRD write beyond either is refused with 507
//! and changes nothing.
//!
//! All versions of a definition share one storage (their objects are stored in the storage
//! version); conversion is `None` (kube's `nopConverter`: only `apiVersion` changes). `Webhook`
//! conversion is refused at validation: it needs a running webhook pod, which this control
//! plane does not reach.

pub mod columns;
pub mod openapi;
pub mod pattern;
pub mod schema;
pub mod validation;

#[cfg(test)]
pub(crate) mod tests;

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use serde_json::Value;

use crate::json as j;
use crate::resource::{ResourceId, ResourceType};
use crate::{Config, Error};

pub use schema::Schema;

/// The finalizer kube puts on every CRD: its objects are deleted before the definition goes.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// The group of CustomResourceDefinitions themselves.
pub const GROUP: &str = "apiextensions.k8s.io";

/// The `scale` subresource of one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleSpec {
    /// JSON path of the desired replicas (`.spec.replicas`).
    pub spec_replicas_path: String,
    /// JSON path of the observed replicas (`.status.replicas`).
    pub status_replicas_path: String,
    /// JSON path of the label selector string, if any.
    pub label_selector_path: Option<String>,
}

/// One `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    /// Column name.
    pub name: String,
    /// OpenAPI type (`string`, `integer`, `number`, `boolean`, `date`).
    pub type_: String,
    /// OpenAPI format, may be empty.
    pub format: String,
    /// Description, may be empty.
    pub description: String,
    /// `priority` (0 = shown by default, more = `-o wide`).
    pub priority: i64,
    /// The compiled JSON path.
    pub path: columns::JsonPath,
}

/// One version of a definition.
#[derive(Debug)]
pub struct Version {
    /// Version name (`v1`, `v1beta1`).
    pub name: String,
    /// Served over the API.
    pub served: bool,
    /// The storage version (exactly one per definition).
    pub storage: bool,
    /// Deprecated, with an optional warning.
    pub deprecated: bool,
    /// `deprecationWarning`, if set.
    pub deprecation_warning: Option<String>,
    /// The compiled structural schema.
    pub schema: Schema,
    /// The `openAPIV3Schema` as written, for the OpenAPI documents.
    pub raw_schema: Value,
    /// Has the `status` subresource.
    pub status: bool,
    /// Has the `scale` subresource.
    pub scale: Option<ScaleSpec>,
    /// Printer columns (an `Age` column when the definition names none).
    pub columns: Vec<PrinterColumn>,
    /// `selectableFields` JSON paths (`.spec.color`), without the leading dot.
    pub selectable_fields: Vec<String>,
}

/// One installed CustomResourceDefinition, as the registry knows it.
#[derive(Debug)]
pub struct Definition {
    /// The store id of its objects.
    pub id: u32,
    /// `metadata.name` (`<plural>.<group>`).
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `spec.group`.
    pub group: String,
    /// Accepted plural (the spec's before names are accepted).
    pub plural: String,
    /// Accepted singular.
    pub singular: String,
    /// Accepted kind.
    pub kind: String,
    /// Accepted list kind.
    pub list_kind: String,
    /// Accepted short names.
    pub short_names: Vec<String>,
    /// Accepted categories.
    pub categories: Vec<String>,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Versions in spec order.
    pub versions: Vec<Version>,
    /// `Established=True`.
    pub established: bool,
    /// `NamesAccepted=True`.
    pub names_accepted: bool,
    /// Being deleted (`deletionTimestamp` set).
    pub terminating: bool,
    /// The store revision of the write that installed this form of the definition: objects
    /// written after it are already pruned and defaulted by these schemas and in the storage
    /// version, so reads serve their bytes as stored.
    pub revision: u64,
    /// Bytes charged to the schema budget.
    pub bytes: usize,
}

impl Definition {
    /// The version named `name`.
    pub fn version(&self, name: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.name == name)
    }

    /// The storage version.
    pub fn storage_version(&self) -> Option<&Version> {
        self.versions.iter().find(|v| v.storage)
    }

    /// Whether requests are served at all (kube serves a definition whose names are accepted,
    /// even before it is established).
    pub fn serving(&self) -> bool {
        self.established || self.names_accepted
    }

    /// `apiVersion` of version `version`.
    pub fn api_version(&self, version: &str) -> String {
        alloc::format!("{}/{version}", self.group)
    }

    /// `<plural>.<group>`, the name in messages.
    pub fn qualified(&self) -> String {
        alloc::format!("{}.{}", self.plural, self.group)
    }
}

/// A definition serving one of its versions: what a request path resolves to.
#[derive(Debug, Clone)]
pub struct Served {
    /// The definition.
    pub definition: Arc<Definition>,
    version: usize,
}

impl PartialEq for Served {
    fn eq(&self, other: &Self) -> bool {
        self.definition.name == other.definition.name
            && self.definition.revision == other.definition.revision
            && self.version == other.version
    }
}

impl Eq for Served {}

const NO_SUBRESOURCES: &[&str] = &[];
const STATUS: &[&str] = &["status"];
const SCALE: &[&str] = &["scale"];
const STATUS_AND_SCALE: &[&str] = &["status", "scale"];

impl Served {
    /// The served version.
    pub fn version(&self) -> &Version {
        // `version` indexes `definition.versions` (set by `Registry::lookup`); fall back to the
        // storage version rather than panic.
        match self.definition.versions.get(self.version) {
            Some(v) => v,
            None => self
                .definition
                .storage_version()
                .or_else(|| self.definition.versions.first())
                .unwrap_or(&EMPTY_VERSION),
        }
    }

    /// The resource type this served version stands for.
    pub fn resource_type(&self) -> ResourceType<'_> {
        let d = &self.definition;
        let v = self.version();
        ResourceType {
            id: ResourceId::Custom(d.id),
            group: &d.group,
            version: &v.name,
            plural: &d.plural,
            singular: &d.singular,
            kind: &d.kind,
            namespaced: d.namespaced,
            short_names: &[],
            categories: &[],
            subresources: match (v.status, v.scale.is_some()) {
                (false, false) => NO_SUBRESOURCES,
                (true, false) => STATUS,
                (false, true) => SCALE,
                (true, true) => STATUS_AND_SCALE,
            },
            custom: Some(self),
            view: None,
        }
    }

    /// `apiVersion` of objects served in this version.
    pub fn api_version(&self) -> String {
        self.definition.api_version(&self.version().name)
    }
}

static EMPTY_VERSION: Version = Version {
    name: String::new(),
    served: false,
    storage: false,
    deprecated: false,
    deprecation_warning: None,
    schema: Schema::PRESERVE,
    raw_schema: Value::Null,
    status: false,
    scale: None,
    columns: Vec::new(),
    selectable_fields: Vec::new(),
};

/// Every stored CRD, installed.
#[derive(Debug)]
pub struct Registry {
    by_name: BTreeMap<String, Arc<Definition>>,
    next_id: u32,
    bytes: usize,
    max_crds: usize,
    max_bytes: usize,
    /// Bumped on every change: the OpenAPI documents built from the definitions are cached
    /// under it.
    generation: u64,
}

impl Registry {
    /// An empty registry with the budgets of `config`.
    pub fn new(config: &Config) -> Self {
        Self {
            by_name: BTreeMap::new(),
            next_id: 0,
            bytes: 0,
            max_crds: config.max_crds,
            max_bytes: config.max_crd_schema_bytes,
            generation: 0,
        }
    }

    /// Changes since start (a cache key).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every definition, by name.
    pub fn definitions(&self) -> impl Iterator<Item = &Arc<Definition>> {
        self.by_name.values()
    }

    /// The definition named `name` (`<plural>.<group>`).
    pub fn get(&self, name: &str) -> Option<&Arc<Definition>> {
        self.by_name.get(name)
    }

    /// The definition whose objects have store id `id`.
    pub fn by_id(&self, id: u32) -> Option<&Arc<Definition>> {
        self.by_name.values().find(|d| d.id == id)
    }

    /// The served version `version` of resource `plural` in `group`, if a serving definition
    /// has it.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Served> {
        let name = alloc::format!("{plural}.{group}");
        let d = self.by_name.get(&name)?;
        if !d.serving() || d.plural != plural {
            return None;
        }
        let index = d
            .versions
            .iter()
            .position(|v| v.name == version && v.served)?;
        Some(Served {
            definition: d.clone(),
            version: index,
        })
    }

    /// The served resource whose objects are of `api_version`/`kind`.
    pub fn lookup_kind(&self, api_version: &str, kind: &str) -> Option<Served> {
        let (group, version) = api_version.split_once('/')?;
        let d = self
            .by_name
            .values()
            .find(|d| d.group == group && d.kind == kind && d.serving())?;
        let index = d
            .versions
            .iter()
            .position(|v| v.name == version && v.served)?;
        Some(Served {
            definition: d.clone(),
            version: index,
        })
    }

    /// The storage version of the definition with store id `id`, as a served handle (for the
    /// controllers, which read and write objects in the storage version).
    pub fn storage(&self, id: u32) -> Option<Served> {
        let d = self.by_id(id)?;
        let index = d.versions.iter().position(|v| v.storage)?;
        Some(Served {
            definition: d.clone(),
            version: index,
        })
    }

    /// Every installed definition, by name.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Definition>> {
        self.by_name.values()
    }

    /// The id the next new definition gets (a snapshot records it).
    pub(crate) fn next_id(&self) -> u32 {
        self.next_id
    }

    /// Sets the id the next new definition gets: a restore gives each definition the id its
    /// objects were stored under, then the recorded next id.
    pub(crate) fn set_next_id(&mut self, id: u32) {
        self.next_id = id;
    }

    /// Checks that `crd` (a CRD object about to be stored) fits the budgets and compiles;
    /// returns what installing it would be.
    pub fn prepare(&self, crd: &Value, revision: u64) -> Result<Definition, Error> {
        let name = j::string_at(crd, "/metadata/name");
        let existing = self.by_name.get(&name);
        if existing.is_none() && self.by_name.len() >= self.max_crds {
            return Err(Error::InsufficientStorage(alloc::format!(
                "the server already holds its limit of {} CustomResourceDefinitions",
                self.max_crds
            )));
        }
        let id = existing.map_or(self.next_id, |d| d.id);
        let definition = build(crd, id, revision)?;
        let freed = existing.map_or(0, |d| d.bytes);
        let used = self
            .bytes
            .saturating_sub(freed)
            .saturating_add(definition.bytes);
        if used > self.max_bytes {
            return Err(Error::InsufficientStorage(alloc::format!(
                "the schemas of the CustomResourceDefinitions would exceed the server's limit of {} bytes",
                self.max_bytes
            )));
        }
        Ok(definition)
    }

    /// Installs a definition made by [`Registry::prepare`], replacing one of the same name. A
    /// definition whose schemas are unchanged keeps its revision, so its objects keep being
    /// served as stored.
    pub fn install(&mut self, mut definition: Definition) {
        if let Some(old) = self.by_name.get(&definition.name)
            && same_storage_form(old, &definition)
        {
            definition.revision = old.revision;
        }
        if definition.id == self.next_id {
            self.next_id = self.next_id.saturating_add(1);
        }
        let freed = self.by_name.get(&definition.name).map_or(0, |d| d.bytes);
        self.bytes = self
            .bytes
            .saturating_sub(freed)
            .saturating_add(definition.bytes);
        self.generation = self.generation.wrapping_add(1);
        self.by_name
            .insert(definition.name.clone(), Arc::new(definition));
    }

    /// Removes the definition named `name` (its CRD object was deleted).
    pub fn remove(&mut self, name: &str) -> Option<Arc<Definition>> {
        let removed = self.by_name.remove(name)?;
        self.bytes = self.bytes.saturating_sub(removed.bytes);
        self.generation = self.generation.wrapping_add(1);
        Some(removed)
    }

    /// Groups served by custom resources, with their served versions (best first, as kube
    /// orders them: GA before beta before alpha, higher numbers first), sorted by group name.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for d in self.by_name.values().filter(|d| d.established) {
            let versions = groups.entry(&d.group).or_default();
            for v in d.versions.iter().filter(|v| v.served) {
                if !versions.contains(&v.name) {
                    versions.push(v.name.clone());
                }
            }
        }
        groups
            .into_iter()
            .filter(|(_, versions)| !versions.is_empty())
            .map(|(g, mut versions)| {
                versions.sort_by(|a, b| compare_versions(a, b));
                (g.to_string(), versions)
            })
            .collect()
    }

    /// The established definitions serving `group`/`version`, sorted by plural.
    pub fn served_in(&self, group: &str, version: &str) -> Vec<Served> {
        let mut out: Vec<Served> = self
            .by_name
            .values()
            .filter(|d| d.established && d.group == group)
            .filter_map(|d| {
                let index = d
                    .versions
                    .iter()
                    .position(|v| v.name == version && v.served)?;
                Some(Served {
                    definition: d.clone(),
                    version: index,
                })
            })
            .collect();
        out.sort_by(|a, b| a.definition.plural.cmp(&b.definition.plural));
        out
    }
}

/// Whether two forms of a definition store and serve objects alike (same versions, schemas
/// and storage version), so objects written under the old form need no pruning or defaulting.
fn same_storage_form(old: &Definition, new: &Definition) -> bool {
    old.versions.len() == new.versions.len()
        && old.versions.iter().zip(&new.versions).all(|(a, b)| {
            a.name == b.name && a.storage == b.storage && a.raw_schema == b.raw_schema
        })
}

/// kube's `version.CompareKubeAwareVersionStrings` order: `v<N>` (GA) before `v<N>beta<M>`
/// before `v<N>alpha<M>`, higher first within each; anything else after, alphabetically.
pub fn compare_versions(a: &str, b: &str) -> core::cmp::Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (major, tail) = rest.split_at(digits);
        let major: u64 = major.parse().ok()?;
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        let (stability, minor) = if let Some(m) = tail.strip_prefix("beta") {
            (1, m)
        } else if let Some(m) = tail.strip_prefix("alpha") {
            (0, m)
        } else {
            return None;
        };
        Some((major, stability, minor.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some((ma, sa, na)), Some((mb, sb, nb))) => sb.cmp(&sa).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => core::cmp::Ordering::Less,
        (None, Some(_)) => core::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

fn condition_true(crd: &Value, type_: &str) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conds| {
            conds
                .iter()
                .any(|c| j::str_at(c, "/type") == type_ && j::str_at(c, "/status") == "True")
        })
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The `Age` column kube gives a version without printer columns.
fn age_column() -> Result<PrinterColumn, Error> {
    Ok(PrinterColumn {
        name: "Age".into(),
        type_: "date".into(),
        format: String::new(),
        description: "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata".into(),
        priority: 0,
        path: columns::JsonPath::parse(".metadata.creationTimestamp")
            .map_err(|e| Error::Internal(alloc::format!("the Age column: {e}")))?,
    })
}

/// Builds the definition a (validated) CRD object describes.
fn build(crd: &Value, id: u32, revision: u64) -> Result<Definition, Error> {
    let name = j::string_at(crd, "/metadata/name");
    let spec = crd.get("spec").unwrap_or(&Value::Null);
    let accepted = crd
        .pointer("/status/acceptedNames")
        .filter(|n| !j::str_at(n, "/plural").is_empty());
    let names = accepted.unwrap_or_else(|| spec.get("names").unwrap_or(&Value::Null));
    let mut bytes = name.len().saturating_add(512);
    let mut versions = Vec::new();
    for v in spec
        .get("versions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let raw_schema = v
            .pointer("/schema/openAPIV3Schema")
            .cloned()
            .unwrap_or(Value::Null);
        let schema = if raw_schema.is_null() {
            Schema::PRESERVE
        } else {
            Schema::compile(&raw_schema).map_err(|e| {
                Error::Internal(alloc::format!(
                    "the schema of version {} of {name} does not compile: {e}",
                    j::str_at(v, "/name")
                ))
            })?
        };
        bytes = bytes
            .saturating_add(schema.bytes())
            .saturating_add(crate::json::to_vec(&raw_schema).len());
        let scale = v.pointer("/subresources/scale").map(|s| ScaleSpec {
            spec_replicas_path: j::string_at(s, "/specReplicasPath"),
            status_replicas_path: j::string_at(s, "/statusReplicasPath"),
            label_selector_path: s
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .map(String::from),
        });
        let mut columns = Vec::new();
        for c in v
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let path = columns::JsonPath::parse(j::str_at(c, "/jsonPath"))
                .map_err(|e| Error::Internal(alloc::format!("a printer column of {name}: {e}")))?;
            columns.push(PrinterColumn {
                name: j::string_at(c, "/name"),
                type_: j::string_at(c, "/type"),
                format: j::string_at(c, "/format"),
                description: j::string_at(c, "/description"),
                priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                path,
            });
        }
        if columns.is_empty() {
            columns.push(age_column()?);
        }
        versions.push(Version {
            name: j::string_at(v, "/name"),
            served: v.get("served").and_then(Value::as_bool).unwrap_or(false),
            storage: v.get("storage").and_then(Value::as_bool).unwrap_or(false),
            deprecated: v
                .get("deprecated")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            deprecation_warning: v
                .get("deprecationWarning")
                .and_then(Value::as_str)
                .map(String::from),
            schema,
            raw_schema,
            status: v.pointer("/subresources/status").is_some(),
            scale,
            columns,
            selectable_fields: v
                .get("selectableFields")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|f| {
                            j::str_at(f, "/jsonPath")
                                .trim_start_matches('.')
                                .to_string()
                        })
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    Ok(Definition {
        id,
        uid: j::string_at(crd, "/metadata/uid"),
        group: j::string_at(spec, "/group"),
        plural: j::string_at(names, "/plural"),
        singular: j::string_at(names, "/singular"),
        kind: j::string_at(names, "/kind"),
        list_kind: j::string_at(names, "/listKind"),
        short_names: strings(names.get("shortNames")),
        categories: strings(names.get("categories")),
        namespaced: j::str_at(spec, "/scope") == "Namespaced",
        versions,
        established: condition_true(crd, "Established"),
        names_accepted: condition_true(crd, "NamesAccepted"),
        terminating: crd
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|t| !t.is_null()),
        revision,
        bytes,
        name,
    })
}
