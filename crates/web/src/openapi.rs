//! The OpenAPI document's frame (title, bearer security scheme), what every operation
//! shares (problem answers), and its Swagger UI.
use axum::{Router, http::StatusCode};
use domain::account::Role;

use crate::error::PROBLEM_JSON;
use utoipa::{
    Modify, OpenApi,
    openapi::{
        ContentBuilder, Ref, RefOr, ResponseBuilder,
        path::Operation,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

/// The document every Emporium service starts from; routes add their paths to it.
#[derive(OpenApi)]
#[openapi(
    info(title = "Emporium API", version = "1", description = "Headless, event-sourced e-commerce backend. \
        Commands answer with `{id, version, position}`; send `X-Emporium-Min-Position: <position>` on a query to \
        read your own writes. Errors are RFC 9457 problem documents with a stable `code`."),
    modifiers(&BearerAuth),
    components(schemas(crate::Problem, crate::error::FieldErrorSchema))
)]
pub struct ApiDoc;

/// Declares the `bearer` scheme so Swagger UI offers an "Authorize" button.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every role, in the order the document lists them.
const EVERY_ROLE: [Role; 3] = [Role::Admin, Role::Staff, Role::Customer];

/// The roles `operation` admits, as its `bearer` security requirement lists them (OpenAPI
/// 3.1 lets a non-OAuth scheme name roles where OAuth names scopes): `None` where it takes
/// no token, every role where the requirement names none (any signed-in account; the
/// handler decides by ownership). A name that is not a role admits no one.
pub fn admitted_roles(operation: &Operation) -> Option<Vec<Role>> {
    let requirements = operation.security.as_ref()?;
    let named: Vec<serde_json::Value> = requirements
        .iter()
        .filter_map(|requirement| serde_json::to_value(requirement).ok())
        .find_map(|requirement| requirement.get("bearer")?.as_array().cloned())?;
    if named.is_empty() {
        return Some(EVERY_ROLE.to_vec());
    }
    Some(
        EVERY_ROLE
            .into_iter()
            .filter(|role| {
                named
                    .iter()
                    .any(|name| serde_json::from_value::<Role>(name.clone()).ok() == Some(*role))
            })
            .collect(),
    )
}

/// Swagger UI at `/docs`, the document at `/api-docs/openapi.json` (served offline: vendored),
/// [`complete`]d.
pub fn docs<S: Clone + Send + Sync + 'static>(mut api: utoipa::openapi::OpenApi) -> Router<S> {
    complete(&mut api);
    Router::new()
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/api-docs/openapi.json", api))
}

/// Completes what the routes' annotations leave out, the same way for every operation:
/// error answers are problem documents as served (`application/problem+json`), every
/// response has the description OpenAPI requires, and the answers any such operation can
/// give are listed: 400 where a body, a parameter or a header is read, 413 and 415 where a
/// body is, 401 where a token is needed, 403 where only some roles are admitted, 409 and
/// 422 where `Idempotency-Key` is honoured, 504 where `X-Emporium-Min-Position` is.
pub fn complete(api: &mut utoipa::openapi::OpenApi) {
    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
        ];
        for operation in operations.into_iter().flatten() {
            complete_operation(operation);
        }
    }
}

fn complete_operation(operation: &mut Operation) {
    let parameters: Vec<String> = operation
        .parameters
        .iter()
        .flatten()
        .filter_map(|parameter| match parameter {
            RefOr::T(parameter) => Some(parameter.name.to_ascii_lowercase()),
            RefOr::Ref(_) => None,
        })
        .collect();
    let reads_body = operation.request_body.is_some();
    let reads_min_position = parameters
        .iter()
        .any(|name| name == "minposition" || name == "x-emporium-min-position");
    let reads_idempotency_key = parameters.iter().any(|name| name == "idempotency-key");
    let admitted = admitted_roles(operation);
    let secured = admitted.is_some();
    let some_roles_only = admitted.is_some_and(|roles| roles.len() < EVERY_ROLE.len());
    let mut common = Vec::new();
    if reads_body || !parameters.is_empty() {
        common.push((
            "400",
            "malformed: not JSON, an unknown field, or a bad parameter or header",
        ));
    }
    if reads_body {
        common.push(("413", "the body is over 1 MiB"));
        common.push(("415", "the body is not `application/json`"));
    }
    if secured {
        common.push(("401", "no access token, or an invalid or expired one"));
    }
    if some_roles_only {
        common.push((
            "403",
            "the caller's role is not one the security requirement names",
        ));
    }
    if reads_idempotency_key {
        common.push((
            "409",
            "`request_in_progress`: a request with this Idempotency-Key is still running",
        ));
        common.push((
            "422",
            "`idempotency_key_reused`: this Idempotency-Key was used for a different request",
        ));
    }
    if reads_min_position {
        common.push((
            "504",
            "the read models did not reach `X-Emporium-Min-Position` in time",
        ));
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in common {
        responses.entry(status.to_owned()).or_insert_with(|| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        PROBLEM_JSON,
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    )
                    .build(),
            )
        });
    }
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        let code = status
            .parse::<u16>()
            .ok()
            .and_then(|code| StatusCode::from_u16(code).ok());
        if response.description.is_empty() {
            response.description = code
                .and_then(|code| code.canonical_reason())
                .unwrap_or("answer")
                .to_owned();
        }
        let is_error = code.is_some_and(|code| code.is_client_error() || code.is_server_error());
        if is_error && let Some(json) = response.content.shift_remove("application/json") {
            response.content.insert(PROBLEM_JSON.to_owned(), json);
        }
    }
}

#[cfg(test)]
mod tests {
    use utoipa::openapi::{
        HttpMethod, OpenApiBuilder, PathItem, PathsBuilder,
        path::{OperationBuilder, ParameterBuilder, ParameterIn},
        request_body::RequestBodyBuilder,
        security::SecurityRequirement,
    };

    use super::*;

    #[test]
    fn every_operation_lists_its_problem_answers_as_served() {
        let json = |schema: &str| {
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build()
        };
        let post = OperationBuilder::new()
            .parameter(
                ParameterBuilder::new()
                    .name("Idempotency-Key")
                    .parameter_in(ParameterIn::Header),
            )
            .request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", json("Order"))
                    .build(),
            ))
            .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
            .response(
                "201",
                ResponseBuilder::new().content("application/json", json("CommandAnswer")),
            )
            .response(
                "409",
                ResponseBuilder::new()
                    .description("not enough stock")
                    .content("application/json", json("Problem")),
            )
            .build();
        let get = OperationBuilder::new()
            .parameter(
                ParameterBuilder::new()
                    .name("minPosition")
                    .parameter_in(ParameterIn::Query),
            )
            .response("200", ResponseBuilder::new().description("the orders"))
            .build();
        let mut item = PathItem::new(HttpMethod::Post, post);
        item.get = Some(get);
        let mut api = OpenApiBuilder::new()
            .paths(PathsBuilder::new().path("/api/v1/orders", item))
            .build();
        complete(&mut api);
        let document = serde_json::to_value(&api).unwrap();
        let orders = &document["paths"]["/api/v1/orders"];
        let post = &orders["post"]["responses"];
        for status in ["400", "401", "409", "413", "415", "422"] {
            assert!(
                post[status]["content"][PROBLEM_JSON].is_object(),
                "{status}: {post}"
            );
            assert!(
                post[status]["content"]["application/json"].is_null(),
                "{status}"
            );
        }
        assert_eq!(post["409"]["description"], "not enough stock", "kept");
        assert!(
            post["422"]["description"]
                .as_str()
                .unwrap()
                .contains("idempotency_key_reused")
        );
        assert_eq!(post["201"]["description"], "Created", "filled in");
        assert!(
            post["201"]["content"]["application/json"].is_object(),
            "success kept"
        );
        assert!(post["504"].is_null());
        assert!(post["403"].is_null(), "every role may place it");
        let get = &orders["get"]["responses"];
        assert!(get["504"]["content"][PROBLEM_JSON].is_object(), "{get}");
        assert!(get["401"].is_null() && get["415"].is_null(), "{get}");
    }

    fn requiring(names: &[&str]) -> Operation {
        OperationBuilder::new()
            .security(SecurityRequirement::new("bearer", names.iter().copied()))
            .build()
    }

    #[test]
    fn the_security_requirement_names_the_roles_admitted() {
        assert_eq!(admitted_roles(&OperationBuilder::new().build()), None);
        assert_eq!(
            admitted_roles(&requiring(&[])),
            Some(EVERY_ROLE.to_vec()),
            "no names: any signed-in account"
        );
        assert_eq!(
            admitted_roles(&requiring(&["STAFF", "ADMIN"])),
            Some(vec![Role::Admin, Role::Staff])
        );
        assert_eq!(
            admitted_roles(&requiring(&["ADMN"])),
            Some(vec![]),
            "a misspelt role admits no one rather than everyone"
        );
    }

    #[test]
    fn an_operation_for_some_roles_lists_its_403() {
        let mut api = OpenApiBuilder::new()
            .paths(PathsBuilder::new().path(
                "/api/v1/cart",
                PathItem::new(HttpMethod::Get, requiring(&["CUSTOMER"])),
            ))
            .build();
        complete(&mut api);
        let document = serde_json::to_value(&api).unwrap();
        let responses = &document["paths"]["/api/v1/cart"]["get"]["responses"];
        assert!(
            responses["403"]["content"][PROBLEM_JSON].is_object(),
            "{responses}"
        );
        assert!(responses["401"].is_object(), "{responses}");
    }
}
