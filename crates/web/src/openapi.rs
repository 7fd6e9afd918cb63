//! The OpenAPI document's frame (title, bearer security scheme) and its Swagger UI.
use axum::Router;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
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

/// Swagger UI at `/docs`, the document at `/api-docs/openapi.json` (served offline: vendored).
pub fn docs<S: Clone + Send + Sync + 'static>(api: utoipa::openapi::OpenApi) -> Router<S> {
    Router::new()
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/api-docs/openapi.json", api))
}
