//! The OpenAPI 3.1 document, generated from the route table (`authz::routes`) and the
//! request types' derived schemas, so the documented inventory and the deployed routes
//! cannot drift apart (OWASP API9).

use axum::Json;
use serde_json::{Map, Value, json};

use crate::authz::{Schemas, routes};

pub async fn document() -> Json<Value> {
    Json(build())
}

/// Path parameters by name: every route names them the same way.
fn path_parameter(name: &str) -> Value {
    let name_pattern = "^[a-z0-9][a-z0-9._-]{0,62}$";
    let (schema, description) = match name {
        "digest" => (
            json!({"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}),
            "A content digest",
        ),
        "seq" => (
            json!({"type": "integer", "format": "int64", "minimum": 1}),
            "Audit entry sequence number",
        ),
        "token" => (
            json!({"type": "string", "pattern": "^[0-9a-f]{16}$"}),
            "Token id",
        ),
        "scope" => (
            json!({"type": "string", "pattern": "^(\\*|[a-z0-9][a-z0-9._-]{0,62})$"}),
            "`*` or a business unit",
        ),
        "role" => (
            json!({"type": "string", "enum": ["data_scientist", "mlops_engineer", "compliance_officer", "reviewer", "data_protection_officer", "auditor", "admin"]}),
            "A role",
        ),
        _ => (json!({"type": "string", "pattern": name_pattern}), "A name"),
    };
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema})
}

fn error_response() -> Value {
    json!({"$ref": "#/components/responses/Error"})
}

pub fn build() -> Value {
    let mut paths = Map::new();
    let mut schemas: Schemas = Vec::new();
    for route in routes() {
        let mut parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|part| {
                part.strip_prefix('{')
                    .and_then(|part| part.strip_suffix('}'))
            })
            .map(path_parameter)
            .collect();
        if let Some(query) = route.query {
            parameters.extend(
                query()
                    .into_iter()
                    .map(|parameter| serde_json::to_value(parameter).unwrap_or(Value::Null)),
            );
        }
        let method = route.method.as_str().to_lowercase();
        let operation_id = format!(
            "{method}{}",
            route
                .path
                .trim_start_matches("/api/v1")
                .replace(['/', '{', '}', '-', '.'], "_")
        );
        let success = if route.path.ends_with("/audit/export") {
            json!({"description": "JSON lines, one audit entry each", "content": {"application/x-ndjson": {"schema": {"type": "string"}}}})
        } else if route.path.contains("/blobs/") && method == "get" {
            json!({"description": "The blob's bytes", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}})
        } else {
            json!({"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}})
        };
        let mut responses = json!({"200": success});
        if matches!(method.as_str(), "post" | "put") {
            responses["201"] = json!({"description": "Created", "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        for status in [
            "400", "401", "403", "404", "409", "413", "422", "429", "503",
        ] {
            responses[status] = error_response();
        }
        let mut operation = json!({"operationId": operation_id, "summary": route.summary, "parameters": parameters, "responses": responses});
        match route.action {
            Some(action) => {
                operation["security"] = json!([{"bearer": []}]);
                operation["x-steward-action"] = json!(action.as_str());
            }
            None => operation["security"] = json!([]),
        }
        if let Some(body) = route.body {
            let name = body(&mut schemas);
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}});
        } else if route.path.contains("/blobs/") && method == "put" {
            operation["requestBody"] = json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}});
        }
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[method] = operation;
    }
    let mut components = Map::new();
    components.insert(
        "Error".to_owned(),
        json!({
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}, "details": {}
            }}}
        }),
    );
    for (name, schema) in schemas {
        components.insert(name, serde_json::to_value(schema).unwrap_or(Value::Null));
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Steward API", "version": "1", "description": "Governed model registry: every change is authorised by policy and recorded in a tamper-evident audit trail."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "A Steward API token, `stw_<id>_<secret>`"}},
            "responses": {"Error": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "schemas": components,
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_body_schema_is_defined_and_every_route_documented() {
        let document = super::build();
        let text = document.to_string();
        for name in [
            "NewUnit",
            "VersionManifest",
            "ModelCard",
            "NewPromotion",
            "NewPromotionApproval",
            "Grant",
        ] {
            assert!(
                document["components"]["schemas"][name].is_object(),
                "{name} missing"
            );
        }
        // Every $ref points at a defined schema.
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                document["components"]["schemas"][name].is_object(),
                "dangling $ref {name}"
            );
        }
        let n_operations: usize = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert_eq!(n_operations, crate::authz::routes().len());
        assert_eq!(
            document["components"]["schemas"]["NewUnit"]["additionalProperties"],
            false
        );
    }
}
