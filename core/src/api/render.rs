//! LIST answers captured under the store lock and encoded after it is released: the capture is a
//! vector of shared handles, so a 10,000-object LIST (or its Table form, which parses every
//! object) never holds up the writer or other readers. Table rows are written one at a time,
//! never held as a tree all together, and a JSON or Table page can be encoded in pieces
//! ([`ListRender::chunks`]) as the runtime sends it.

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

/// What ends a JSON LIST.
const JSON_TAIL: &[u8] = b"]}";

/// A JSON or Table LIST page encoded piece by piece ([`ListRender::chunks`]).
#[derive(Debug)]
pub struct ListChunks {
    render: ListRender,
    /// The next item to encode.
    next: usize,
    head_done: bool,
    /// A Table row was written (the next one follows a comma).
    wrote_row: bool,
    done: bool,
}

impl ListChunks {
    /// The body's content type.
    pub fn content_type(&self) -> &'static str {
        match self.render.format {
            ListFormat::Table(_) => request::TABLE,
            _ => request::JSON,
        }
    }

    /// The whole body's length, when the items are served as stored (a JSON LIST, no
    /// conversion to another version), so the answer can carry a `Content-Length` as the
    /// whole body would.
    pub fn body_len(&self) -> Option<usize> {
        if self.render.format != ListFormat::Json
            || self.render.custom.is_some()
            || self.render.view.is_some()
        {
            return None;
        }
        let mut head = Vec::new();
        self.render.json_head(&mut head);
        let items: usize = self.render.items.iter().map(|o| o.json.len()).sum();
        let commas = self.render.items.len().saturating_sub(1);
        Some(head.len() + items + commas + JSON_TAIL.len())
    }

    /// The next piece, at least `chunk_bytes` long unless it is the last (one item past it at
    /// most); `None` once the body is complete.
    pub fn next_chunk(&mut self, chunk_bytes: usize) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let mut out = Vec::with_capacity(chunk_bytes.saturating_add(4096));
        let table = match self.render.format {
            ListFormat::Table(include) => Some(include),
            _ => None,
        };
        if !self.head_done {
            match table {
                Some(_) => self.render.table_head(&mut out),
                None => self.render.json_head(&mut out),
            }
            self.head_done = true;
        }
        while self.next < self.render.items.len() && out.len() < chunk_bytes {
            match table {
                Some(include) => {
                    let wrote = self
                        .render
                        .table_row(self.next, self.wrote_row, include, &mut out);
                    self.wrote_row |= wrote;
                }
                None => self.render.json_item(self.next, &mut out),
            }
            self.next += 1;
        }
        if self.next >= self.render.items.len() {
            out.extend_from_slice(JSON_TAIL);
            self.done = true;
        }
        Some(out)
    }
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

    /// Whether the page is encoded as JSON (a `<Kind>List`) or a Table, which [`Self::chunks`]
    /// can encode in pieces.
    pub fn in_pieces(&self) -> bool {
        matches!(self.format, ListFormat::Json | ListFormat::Table(_))
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
        let mut body =
            Vec::with_capacity(self.items.iter().map(|o| o.json.len() + 1).sum::<usize>() + 256);
        self.json_head(&mut body);
        for i in 0..self.items.len() {
            self.json_item(i, &mut body);
        }
        body.extend_from_slice(JSON_TAIL);
        body
    }

    /// `{"kind":…,"apiVersion":…,"metadata":{…},"items":[`.
    fn json_head(&self, body: &mut Vec<u8>) {
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
        body.extend_from_slice(b"{\"kind\":\"");
        body.extend_from_slice(list_kind.as_bytes());
        body.extend_from_slice(b"\",\"apiVersion\":\"");
        body.extend_from_slice(api_version.as_bytes());
        body.extend_from_slice(b"\",\"metadata\":");
        self.metadata(body);
        body.extend_from_slice(b",\"items\":[");
    }

    /// Item `i`, after a comma unless it is the first.
    fn json_item(&self, i: usize, body: &mut Vec<u8>) {
        let Some(object) = self.items.get(i) else {
            return;
        };
        if i > 0 {
            body.push(b',');
        }
        match &self.custom {
            Some(served) => body.extend_from_slice(&super::custom::view_bytes(served, object)),
            None => match self.view {
                Some(view) => body.extend_from_slice(&view.bytes_to_view(&object.json.bytes())),
                None => object.json.append_to(body),
            },
        }
    }

    /// The JSON or Table form in pieces (`Err(self)` for another format), so the runtime can
    /// send the first bytes while it encodes the rest: a large LIST's encoding then overlaps
    /// its transfer, and no more than a few pieces are held at once instead of the whole body.
    #[allow(clippy::result_large_err)]
    pub fn chunks(self) -> Result<ListChunks, Self> {
        if !self.in_pieces() {
            return Err(self);
        }
        Ok(ListChunks {
            render: self,
            next: 0,
            head_done: false,
            wrote_row: false,
            done: false,
        })
    }

    fn table(&self, include: IncludeObject) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.items.len() * 512 + 1024);
        self.table_head(&mut body);
        let mut wrote_row = false;
        for i in 0..self.items.len() {
            wrote_row |= self.table_row(i, wrote_row, include, &mut body);
        }
        body.extend_from_slice(JSON_TAIL);
        body
    }

    /// `{"kind":"Table",…,"columnDefinitions":[…],"rows":[`.
    fn table_head(&self, body: &mut Vec<u8>) {
        body.extend_from_slice(
            b"{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/v1\",\"metadata\":",
        );
        self.metadata(body);
        body.extend_from_slice(b",\"columnDefinitions\":");
        let columns = match &self.custom {
            Some(served) => table::column_definitions(served.version()),
            None => table::column_definitions(self.resource),
        };
        body.extend_from_slice(&crate::json::to_vec(&columns));
        body.extend_from_slice(b",\"rows\":[");
    }

    /// Item `i`'s row, after a comma when `after_row`; false when the item has no row (it
    /// does not read as its kind).
    fn table_row(
        &self,
        i: usize,
        after_row: bool,
        include: IncludeObject,
        body: &mut Vec<u8>,
    ) -> bool {
        let Some(object) = self.items.get(i) else {
            return false;
        };
        match &self.custom {
            Some(served) => {
                let Ok(value) = super::custom::view(served, object) else {
                    return false;
                };
                if after_row {
                    body.push(b',');
                }
                let raw = table::RowBytes::default();
                table::write_row(served.version(), &value, raw, self.now, include, body);
            }
            None => {
                let json = object.json.bytes();
                let Some(source) = table::source::read_for(self.resource, &json) else {
                    return false;
                };
                if after_row {
                    body.push(b',');
                }
                // Cells are printed from the stored shape (kube prints the internal type); an
                // included object is in the shape asked for.
                let viewed = self.view.map(|view| view.bytes_to_view(&json));
                let raw = table::RowBytes {
                    object: Some(viewed.as_deref().unwrap_or(&json)),
                    metadata: source.metadata,
                };
                let value = &source.object;
                table::write_row(self.resource, value, raw, self.now, include, body);
            }
        }
        true
    }
}
