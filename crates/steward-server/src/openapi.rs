//! The OpenAPI 3.1 document, generated from the route table (`authz::routes`), so the
//! documented inventory and the deployed routes cannot drift apart (OWASP API9).

use axum::Json;
use serde_json::{Map, Value, json};

use crate::authz::routes;

pub async fn document() -> Json<Value> {
    Json(build())
}

pub fn build() -> Value {
    let mut paths = Map::new();
    for route in routes() {
        let path_params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|part| part.strip_prefix('{').and_then(|part| part.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": name_type(name)}}))
            .collect();
        let method = route.method.as_str().to_lowercase();
        let operation_id = format!(
            "{method}{}",
            route
                .path
                .trim_start_matches("/api/v1")
                .replace(['/', '{', '}', '-', '.'], "_")
        );
        let mut operation = json!({
            "operationId": operation_id,
            "summary": route.summary,
            "parameters": path_params,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
                "201": {"description": "Created", "content": {"application/json": {"schema": {"type": "object"}}}},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
                "409": {"$ref": "#/components/responses/Error"},
                "413": {"$ref": "#/components/responses/Error"},
                "422": {"$ref": "#/components/responses/Error"},
                "503": {"$ref": "#/components/responses/Error"},
            },
        });
        match route.action {
            Some(action) => {
                operation["security"] = json!([{"bearer": []}]);
                operation["x-steward-action"] = json!(action.as_str());
            }
            None => operation["security"] = json!([]),
        }
        if matches!(route.method.as_str(), "POST" | "PUT") {
            let content_type = if route.path.contains("/blobs/") {
                "application/octet-stream"
            } else {
                "application/json"
            };
            operation["requestBody"] = json!({"required": true, "content": {content_type: {"schema": {"type": if content_type == "application/json" { "object" } else { "string" }}}}});
        }
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Steward API", "version": "1", "description": "Governed model registry: every change is authorised by policy and recorded in a tamper-evident audit trail."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "A Steward API token, `stw_<id>_<secret>`"}},
            "responses": {"Error": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "schemas": {"Error": {
                "type": "object", "required": ["error"],
                "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}, "details": {}
                }}}
            }},
        },
    })
}

fn name_type(name: &str) -> &'static str {
    if name == "seq" { "integer" } else { "string" }
}
