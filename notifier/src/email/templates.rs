//! The e-mail templates, kept in `notifier/templates/` and built into the binary: for each
//! kind of message a subject line (`<name>.subject`), a plain-text body (`<name>.txt`) and
//! an HTML body (`<name>.html`, extending `layout.html`, every value HTML-escaped).
//!
//! Rendering is pure: the same data gives the same message. A value a template names but
//! the data lacks is an error (caught by the tests below), not an empty string.
use minijinja::{Environment, UndefinedBehavior, value::Serde};
use serde_json::Value;

/// A kind of e-mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Template {
    /// The order confirmation.
    OrderPlaced,
    /// The order left the warehouse (carrier and tracking number).
    OrderShipped,
    /// The order arrived.
    OrderDelivered,
    /// The order was cancelled.
    OrderCancelled,
    /// A one-time token to set a new password.
    PasswordReset,
}

impl Template {
    /// Every template.
    pub const ALL: [Template; 5] = [
        Template::OrderPlaced,
        Template::OrderShipped,
        Template::OrderDelivered,
        Template::OrderCancelled,
        Template::PasswordReset,
    ];

    /// The stored name (the `template` column of `email_outbox`, and the file names).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Template::OrderPlaced => "order_placed",
            Template::OrderShipped => "order_shipped",
            Template::OrderDelivered => "order_delivered",
            Template::OrderCancelled => "order_cancelled",
            Template::PasswordReset => "password_reset",
        }
    }

    /// The template stored as `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Template> {
        Template::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether the message carries a secret: its data is wiped once it is sent or dead.
    #[must_use]
    pub fn is_secret(self) -> bool {
        self == Template::PasswordReset
    }

    fn sources(self) -> [(&'static str, &'static str); 3] {
        macro_rules! files {
            ($name:literal) => {
                [
                    (
                        concat!($name, ".subject"),
                        include_str!(concat!("../../templates/", $name, ".subject")),
                    ),
                    (
                        concat!($name, ".txt"),
                        include_str!(concat!("../../templates/", $name, ".txt")),
                    ),
                    (
                        concat!($name, ".html"),
                        include_str!(concat!("../../templates/", $name, ".html")),
                    ),
                ]
            };
        }
        match self {
            Template::OrderPlaced => files!("order_placed"),
            Template::OrderShipped => files!("order_shipped"),
            Template::OrderDelivered => files!("order_delivered"),
            Template::OrderCancelled => files!("order_cancelled"),
            Template::PasswordReset => files!("password_reset"),
        }
    }
}

/// A message ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// One line.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

/// The compiled templates.
pub struct Templates {
    env: Environment<'static>,
    shop_name: String,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("shop_name", &self.shop_name)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// Every template, signed by `shop_name`.
    ///
    /// # Panics
    /// When a built-in template does not compile (the tests below compile them all).
    #[must_use]
    pub fn new(shop_name: &str) -> Self {
        let mut env = Environment::new();
        // Undefined values may be tested with `if`, never printed.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.add_template("layout.html", include_str!("../../templates/layout.html"))
            .expect("layout.html compiles");
        for template in Template::ALL {
            for (name, source) in template.sources() {
                env.add_template(name, source)
                    .unwrap_or_else(|err| panic!("template {name} does not compile: {err}"));
            }
        }
        Self {
            env,
            shop_name: shop_name.to_owned(),
        }
    }

    /// Renders `template` with `data` (a JSON object; `shop_name` is added).
    ///
    /// # Errors
    /// When the data lacks a value the template prints.
    pub fn render(&self, template: Template, data: &Value) -> Result<Rendered, minijinja::Error> {
        let mut context = match data {
            Value::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        };
        context.insert("shop_name".into(), Value::String(self.shop_name.clone()));
        let context = Value::Object(context);
        let render = |extension: &str| {
            self.env
                .get_template(&format!("{}.{extension}", template.name()))
                .and_then(|t| t.render(Serde(&context)))
        };
        let subject = render("subject")?;
        Ok(Rendered {
            // A header is one line, whatever a value held.
            subject: subject
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(200)
                .collect(),
            text: render("txt")?,
            html: render("html")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn placed() -> Value {
        json!({
            "customer_name": "Ada <script>",
            "order_number": "0190ab",
            "lines": [
                {"name": "Linen shirt", "sku": "SHIRT-M", "quantity": 2, "unit_price": "19.99 EUR", "line_total": "39.98 EUR"},
            ],
            "total": "39.98 EUR",
            "address_lines": ["Ada Lovelace", "1 Main St", "10115 Berlin", "DE"],
        })
    }

    #[test]
    fn every_template_renders_its_data() {
        let templates = Templates::new("Emporium");
        let samples = [
            (Template::OrderPlaced, placed()),
            (
                Template::OrderShipped,
                json!({"customer_name": "Ada", "order_number": "1", "carrier": "DHL", "tracking_number": "JD0001"}),
            ),
            (
                Template::OrderDelivered,
                json!({"customer_name": "Ada", "order_number": "1"}),
            ),
            (
                Template::OrderCancelled,
                json!({"customer_name": "Ada", "order_number": "1", "reason": "changed my mind"}),
            ),
            (
                Template::PasswordReset,
                json!({"customer_name": "Ada", "token": "tok-123", "expires_in_minutes": 60}),
            ),
        ];
        for (template, data) in samples {
            let rendered = templates.render(template, &data).unwrap();
            assert!(!rendered.subject.is_empty(), "{template:?}");
            assert!(!rendered.subject.contains('\n'), "{template:?}");
            assert!(rendered.text.contains("Ada"), "{template:?}");
            assert!(rendered.html.contains("Emporium"), "{template:?}");
            assert_eq!(Template::parse(template.name()), Some(template));
        }
    }

    #[test]
    fn the_confirmation_lists_lines_total_and_address() {
        let rendered = Templates::new("Emporium")
            .render(Template::OrderPlaced, &placed())
            .unwrap();
        assert_eq!(rendered.subject, "Your order 0190ab is confirmed");
        for part in [&rendered.text, &rendered.html] {
            for expected in [
                "Linen shirt",
                "SHIRT-M",
                "19.99 EUR",
                "39.98 EUR",
                "10115 Berlin",
            ] {
                assert!(part.contains(expected), "{expected} missing from {part}");
            }
        }
        assert!(rendered.text.contains("2 x Linen shirt"));
    }

    #[test]
    fn html_escapes_values_and_text_keeps_them() {
        let rendered = Templates::new("Emporium")
            .render(Template::OrderPlaced, &placed())
            .unwrap();
        assert!(rendered.html.contains("Ada &lt;script&gt;"));
        assert!(!rendered.html.contains("<script>"));
        assert!(rendered.text.contains("Ada <script>"));
    }

    #[test]
    fn the_reset_mail_shows_the_link_or_the_token() {
        let templates = Templates::new("Emporium");
        let with_link = templates
            .render(
                Template::PasswordReset,
                &json!({"customer_name": "Ada", "token": "tok-123", "reset_url": "https://shop.example/reset?token=tok-123", "expires_in_minutes": 30}),
            )
            .unwrap();
        assert!(
            with_link
                .text
                .contains("https://shop.example/reset?token=tok-123")
        );
        assert!(with_link.text.contains("30 minutes"));
        let bare = templates
            .render(
                Template::PasswordReset,
                &json!({"customer_name": "Ada", "token": "tok-123", "expires_in_minutes": 30}),
            )
            .unwrap();
        assert!(bare.text.contains("tok-123"));
        assert!(bare.text.contains("/api/v1/auth/password-reset/confirm"));
    }

    #[test]
    fn missing_data_is_an_error_not_a_blank() {
        let templates = Templates::new("Emporium");
        assert!(
            templates
                .render(Template::OrderDelivered, &json!({"customer_name": "Ada"}))
                .is_err()
        );
    }

    #[test]
    fn subjects_stay_on_one_line() {
        let rendered = Templates::new("Emporium")
            .render(
                Template::OrderDelivered,
                &json!({"customer_name": "Ada", "order_number": "1\r\nBcc: victim@example.com"}),
            )
            .unwrap();
        assert!(!rendered.subject.contains('\n') && !rendered.subject.contains('\r'));
    }
}
