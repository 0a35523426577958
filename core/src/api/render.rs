//! LIST answers captured under the store lock and encoded after it is released: the capture is a
//! vector of shared handles, so a 10,000-object LIST (or its Table form, which parses every
//! object) never holds up the writer or other readers. Table rows are written one at a time,
//! never held as a tree all together.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::Value;

use super::request::{self, ApiResponse, MetadataView};
use super::table::{self, IncludeObject};
use crate::UnixTime;
use crate::resource::ResourceId;
use crate::store::StoredObject;

/// How a LIST is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// `<Kind>List` with the stored bytes spliced in.
    Json,
    /// A `meta.k8s.io/v1` Table.
    Table(IncludeObject),
    /// A `PartialObjectMetadataList` (only each object's metadata).
    Metadata(MetadataView),
}

/// One captured LIST page, ready to encode.
#[derive(Debug)]
pub struct ListRender {
    pub(crate) resource: ResourceId,
    /// The served version of a custom resource: its objects are rewritten to it.
    pub(crate) custom: Option<crate::crd::Served>,
    /// The view of a built-in kind the LIST was asked in: its objects are converted to it.
    pub(crate) view: Option<crate::resource::View>,
    pub(crate) format: ListFormat,
    pub(crate) items: Vec<StoredObject>,
    pub(crate) revision: u64,
    pub(crate) continue_token: Option<String>,
    pub(crate) remaining: Option<u64>,
    pub(crate) now: UnixTime,
}

impl ListRender {
    /// Objects in the page.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the page is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Encodes the page.
    pub fn render(self) -> ApiResponse {
        match self.format {
            ListFormat::Json => ApiResponse::json(200, self.json()),
            ListFormat::Table(include) => ApiResponse {
                content_type: request::TABLE,
                ..ApiResponse::json(200, self.table(include))
            },
            ListFormat::Metadata(view) => {
                let mut metadata = serde_json::Map::new();
                metadata.insert("resourceVersion".into(), self.revision.to_string().into());
                if let Some(token) = &self.continue_token {
                    metadata.insert("continue".into(), token.as_str().into());
                }
                if let Some(remaining) = self.remaining {
                    metadata.insert("remainingItemCount".into(), remaining.into());
                }
                let body = super::metadata::list_body(
                    view,
                    &Value::Object(metadata),
                    self.items.iter().map(|o| o.json.bytes()),
                );
                ApiResponse {
                    content_type: view.content_type(),
                    ..ApiResponse::json(200, body)
                }
            }
        }
    }

    fn metadata(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"resourceVersion\":\"");
        out.extend_from_slice(self.revision.to_string().as_bytes());
        out.push(b'"');
        if let Some(token) = &self.continue_token {
            out.extend_from_slice(b",\"continue\":\"");
            out.extend_from_slice(token.as_bytes());
            out.push(b'"');
        }
        if let Some(remaining) = self.remaining {
            out.extend_from_slice(alloc::format!(",\"remainingItemCount\":{remaining}").as_bytes());
        }
        out.push(b'}');
    }

    fn json(&self) -> Vec<u8> {
        let (list_kind, api_version) = match &self.custom {
            Some(served) => (served.definition.list_kind.clone(), served.api_version()),
            None => {
                let info = self.view.map_or(self.resource.info(), |v| v.info());
                (
                    alloc::format!("{}List", info.kind),
                    String::from(info.api_version()),
                )
            }
        };
        let mut body =
            Vec::with_capacity(self.items.iter().map(|o| o.json.len() + 1).sum::<usize>() + 256);
        body.extend_from_slice(b"{\"kind\":\"");
        body.extend_from_slice(list_kind.as_bytes());
        body.extend_from_slice(b"\",\"apiVersion\":\"");
        body.extend_from_slice(api_version.as_bytes());
        body.extend_from_slice(b"\",\"metadata\":");
        self.metadata(&mut body);
        body.extend_from_slice(b",\"items\":[");
        for (i, object) in self.items.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            match &self.custom {
                Some(served) => body.extend_from_slice(&super::custom::view_bytes(served, object)),
                None => match self.view {
                    Some(view) => body.extend_from_slice(&view.bytes_to_view(&object.json.bytes())),
                    None => object.json.append_to(&mut body),
                },
            }
        }
        body.extend_from_slice(b"]}");
        body
    }

    fn table(&self, include: IncludeObject) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.items.len() * 512 + 1024);
        body.extend_from_slice(
            b"{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/v1\",\"metadata\":",
        );
        self.metadata(&mut body);
        body.extend_from_slice(b",\"columnDefinitions\":");
        let columns = match &self.custom {
            Some(served) => table::column_definitions(served.version()),
            None => table::column_definitions(self.resource),
        };
        body.extend_from_slice(&crate::json::to_vec(&columns));
        body.extend_from_slice(b",\"rows\":[");
        let mut first = true;
        for object in &self.items {
            match &self.custom {
                Some(served) => {
                    let Ok(value) = super::custom::view(served, object) else {
                        continue;
                    };
                    if !first {
                        body.push(b',');
                    }
                    let raw = table::RowBytes::default();
                    table::write_row(served.version(), &value, raw, self.now, include, &mut body);
                }
                None => {
                    let json = object.json.bytes();
                    let Some(source) = table::source::read_for(self.resource, &json) else {
                        continue;
                    };
                    if !first {
                        body.push(b',');
                    }
                    // Cells are printed from the stored shape (kube prints the internal
                    // type); an included object is in the shape asked for.
                    let viewed = self.view.map(|view| view.bytes_to_view(&json));
                    let raw = table::RowBytes {
                        object: Some(viewed.as_deref().unwrap_or(&json)),
                        metadata: source.metadata,
                    };
                    let value = &source.object;
                    table::write_row(self.resource, value, raw, self.now, include, &mut body);
                }
            }
            first = false;
        }
        body.extend_from_slice(b"]}");
        body
    }
}
