//! A WHERE clause under construction: fixed SQL fragments, every value bound as `$n`, so
//! nothing a client sends is spliced into SQL.
use sqlx::{Any, any::AnyArguments, query::Query};

/// A value bound to a placeholder.
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// Conditions joined with `AND`, and the values their placeholders stand for.
#[derive(Default)]
pub(crate) struct Filter {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Filter {
    /// Binds `value`; returns its placeholder (`$n`).
    pub(crate) fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    /// Adds `condition`: fixed SQL whose values are placeholders from [`Filter::bind`].
    pub(crate) fn require(&mut self, condition: String) {
        self.clauses.push(condition);
    }

    /// Adds `column op $n` with the text `value` bound to `$n` (`column` and `op` are fixed
    /// SQL).
    pub(crate) fn push(&mut self, column: &str, op: &str, value: String) {
        let placeholder = self.bind(Bind::Text(value));
        self.require(format!("{column} {op} {placeholder}"));
    }

    /// The conditions, or one that always holds.
    pub(crate) fn where_clause(&self) -> String {
        if self.clauses.is_empty() {
            "1 = 1".to_owned()
        } else {
            self.clauses.join(" AND ")
        }
    }

    /// How many values are bound: the next placeholder is `$` this plus one.
    pub(crate) fn bound(&self) -> usize {
        self.binds.len()
    }

    /// `sql` with the bound values, ready for more binds after them.
    pub(crate) fn query<'q>(&self, sql: String) -> Query<'q, Any, AnyArguments> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for bind in &self.binds {
            query = match bind {
                Bind::Text(text) => query.bind(text.clone()),
                Bind::Int(int) => query.bind(*int),
            };
        }
        query
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub(crate) fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_count_up_and_no_condition_always_holds() {
        let mut filter = Filter::default();
        assert_eq!(filter.where_clause(), "1 = 1");
        filter.push("o.status", "=", "PAID'; DROP TABLE rm_orders; --".into());
        let bound = filter.bind(Bind::Int(5));
        filter.require(format!("o.total >= {bound}"));
        assert_eq!(filter.where_clause(), "o.status = $1 AND o.total >= $2");
        assert_eq!(filter.bound(), 2);
    }
}
