//! Read repositories of the back office and the customer's own data: [`OrderBook`] (which
//! orders match, and what one order looks like), [`OrderHistory`] (an order's events,
//! straight from the event store), [`CustomerDirectory`] (a customer's profile) and
//! [`SalesFigures`] (revenue, orders and units by day and product). Every value is bound,
//! never spliced.
//!
//! Order views are cached like product views ([`crate::read`]): validated against the
//! `orders` checkpoint, or the order's stored version. Who may see an order is decided by
//! the route after the lookup, so a cached order is guarded exactly as a loaded one. Order
//! lists are always read from the read model.
use std::sync::Arc;

use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use cache::{LocalConfig, SharedViews, ViewCache};
use chrono::{DateTime, Days, NaiveDate, SecondsFormat, Utc};
use domain::{
    aggregate::{Aggregate, DomainEvent, decode, encode},
    ids::{AccountId, OrderId},
    order::{Order, OrderEvent, OrderState},
};
use eventstore::{EventStore, StreamId};
use projector::OrdersProjection;
use sqlx::{AnyPool, Row};
use uuid::Uuid;
use web::ApiError;

use crate::{
    QueryConfig,
    consistency::Consistency,
    order_views::{
        CustomerProfileView, OrderEventView, OrderPage, OrderStatusView, OrderView, SalesItem,
        SalesReport, SalesTotals,
    },
    read::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE},
    sql_filter::{Bind, Filter},
    views::MoneyView,
};

pub(crate) fn internal(err: impl Into<anyhow::Error>) -> ApiError {
    ApiError::Internal(err.into())
}

pub(crate) fn number(
    name: &str,
    value: &str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, ApiError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            ApiError::invalid_query(format!(
                "{name} must be an integer from {} to {}",
                range.start(),
                range.end()
            ))
        })
}

/// Rejects a parameter given twice (so a repeated filter never silently wins).
pub(crate) fn once<'a>(seen: &mut Vec<&'a str>, key: &'a str) -> Result<(), ApiError> {
    if seen.contains(&key) {
        return Err(ApiError::invalid_query(format!("{key} is given twice")));
    }
    seen.push(key);
    Ok(())
}

/// The read models' time format: RFC 3339 in UTC with microseconds (sorts as text).
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A day (`YYYY-MM-DD`) or an instant (RFC 3339), as a query gives a period's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeBound {
    /// A whole UTC day.
    Day(NaiveDate),
    /// An instant.
    Instant(DateTime<Utc>),
}

impl TimeBound {
    /// Parses `YYYY-MM-DD` or RFC 3339 (years 1 to 9999).
    ///
    /// # Errors
    /// 400 (`invalid_query`) naming `name`.
    pub fn parse(name: &str, value: &str) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::invalid_query(format!(
                "{name} must be a date (YYYY-MM-DD) or an RFC 3339 time"
            ))
        };
        let bound = if let Ok(day) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            Self::Day(day)
        } else {
            Self::Instant(
                DateTime::parse_from_rfc3339(value)
                    .map_err(|_| bad())?
                    .with_timezone(&Utc),
            )
        };
        let year = chrono::Datelike::year(&bound.day());
        if !(1..=9999).contains(&year) {
            return Err(bad());
        }
        Ok(bound)
    }

    /// The UTC day it falls on.
    pub fn day(self) -> NaiveDate {
        match self {
            Self::Day(day) => day,
            Self::Instant(at) => at.date_naive(),
        }
    }

    /// The first instant of the period it starts, as stored text.
    fn start(self) -> String {
        match self {
            Self::Day(day) => timestamp(day.and_time(chrono::NaiveTime::MIN).and_utc()),
            Self::Instant(at) => timestamp(at),
        }
    }

    /// The SQL comparison that keeps times up to and including this end, and the bound text.
    fn end(self) -> (&'static str, String) {
        match self {
            Self::Day(day) => match day.checked_add_days(Days::new(1)) {
                Some(next) => (
                    "<",
                    timestamp(next.and_time(chrono::NaiveTime::MIN).and_utc()),
                ),
                None => ("<=", "9999-12-31T23:59:59.999999Z".to_owned()),
            },
            Self::Instant(at) => ("<=", timestamp(at)),
        }
    }
}

/// Where a page of orders starts: after this order, in the list's order (newest first,
/// then by id). Sent as `nextCursor`, an opaque base64url token; unlike a page number it
/// stays put while new orders arrive, and reads the next page with an index range instead
/// of skipping every order before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderCursor {
    /// The last order's placement time, as stored.
    created_at: String,
    /// The last order's id (a UUID, as stored).
    id: String,
}

impl OrderCursor {
    fn after(order: &OrderView) -> Self {
        Self {
            created_at: order.created_at.clone(),
            id: order.id.clone(),
        }
    }

    /// The token a client sends back.
    #[must_use]
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{} {}", self.created_at, self.id))
    }

    /// Reads a token [`Self::encode`] made.
    ///
    /// # Errors
    /// 400 (`invalid_query`) for anything else.
    pub fn parse(token: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::invalid_query("cursor must be a nextCursor this API gave");
        let text = URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(bad)?;
        let (at, id) = text.split_once(' ').ok_or_else(bad)?;
        let at = DateTime::parse_from_rfc3339(at).map_err(|_| bad())?;
        Ok(Self {
            // As the read model stores it, so the comparison is exact.
            created_at: timestamp(at.with_timezone(&Utc)),
            id: id.parse::<Uuid>().map_err(|_| bad())?.to_string(),
        })
    }
}

/// A validated order list query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderQuery {
    /// Only this customer's orders: the caller when a customer asks, else the
    /// `customerId` filter.
    pub customer: Option<AccountId>,
    /// With a customer caller, the `customerId` they asked for (when it is not theirs, the
    /// page is empty).
    pub also_customer: Option<AccountId>,
    /// Only orders with this status.
    pub status: Option<OrderStatusView>,
    /// Placed at or after.
    pub from: Option<TimeBound>,
    /// Placed at or before (a day: until its end).
    pub to: Option<TimeBound>,
    /// Page number, from 1.
    pub page: u32,
    /// Orders per page, 1 to [`MAX_PAGE_SIZE`].
    pub page_size: u32,
    /// The page starts after this order (instead of at `page`).
    pub cursor: Option<OrderCursor>,
}

impl OrderQuery {
    /// Validates the query string's pairs; `own` is the caller's id when the caller is a
    /// customer (who sees their own orders only). Unknown or repeated parameters are
    /// refused.
    ///
    /// # Errors
    /// 400 (`invalid_query`) naming the parameter at fault.
    pub fn parse(pairs: &[(String, String)], own: Option<AccountId>) -> Result<Self, ApiError> {
        let mut query = Self {
            customer: own,
            also_customer: None,
            status: None,
            from: None,
            to: None,
            page: 1,
            page_size: DEFAULT_PAGE_SIZE,
            cursor: None,
        };
        let mut seen = Vec::new();
        for (key, value) in pairs {
            once(&mut seen, key)?;
            match key.as_str() {
                "status" => {
                    query.status = Some(OrderStatusView::parse(value).ok_or_else(|| {
                        ApiError::invalid_query(
                            "status must be one of PLACED, PAID, PACKED, SHIPPED, DELIVERED, \
                             CANCELLED",
                        )
                    })?);
                }
                "customerId" => {
                    let id = value
                        .parse::<Uuid>()
                        .map(AccountId::new)
                        .map_err(|_| ApiError::invalid_query("customerId must be a UUID"))?;
                    if own.is_some() {
                        query.also_customer = Some(id);
                    } else {
                        query.customer = Some(id);
                    }
                }
                "from" => query.from = Some(TimeBound::parse(key, value)?),
                "to" => query.to = Some(TimeBound::parse(key, value)?),
                "page" => query.page = number(key, value, 1..=1_000_000)?,
                "pageSize" => query.page_size = number(key, value, 1..=MAX_PAGE_SIZE)?,
                "cursor" => query.cursor = Some(OrderCursor::parse(value)?),
                // Read by the read-your-writes extractor.
                "minPosition" => {}
                other => {
                    return Err(ApiError::invalid_query(format!(
                        "unknown parameter {other}"
                    )));
                }
            }
        }
        if query.cursor.is_some() && seen.contains(&"page") {
            return Err(ApiError::invalid_query(
                "cursor and page exclude each other: the cursor says where the page starts",
            ));
        }
        if let (Some(from), Some(to)) = (query.from, query.to)
            && match to.end() {
                ("<", end) => from.start() >= end,
                (_, end) => from.start() > end,
            }
        {
            return Err(ApiError::invalid_query("from must not be after to"));
        }
        Ok(query)
    }

    fn filter(&self) -> Filter {
        let mut filter = Filter::default();
        if let Some(customer) = self.customer {
            filter.push("o.customer_id", "=", customer.to_string());
        }
        if let Some(customer) = self.also_customer {
            filter.push("o.customer_id", "=", customer.to_string());
        }
        if let Some(status) = self.status {
            filter.push("o.status", "=", status.as_str().to_owned());
        }
        if let Some(from) = self.from {
            filter.push("o.created_at", ">=", from.start());
        }
        if let Some(to) = self.to {
            let (op, bound) = to.end();
            filter.push("o.created_at", op, bound);
        }
        filter
    }

    /// The same orders' condition on `rm_order_counts` (orders per day and status), when
    /// the counts can say how many match: no customer, and whole days for the period.
    fn count_filter(&self) -> Option<Filter> {
        let whole_day = |bound: Option<TimeBound>| match bound {
            None => Some(None),
            Some(TimeBound::Day(day)) => Some(Some(day.format("%Y-%m-%d").to_string())),
            Some(TimeBound::Instant(_)) => None,
        };
        if self.customer.is_some() || self.also_customer.is_some() {
            return None;
        }
        let (from, to) = (whole_day(self.from)?, whole_day(self.to)?);
        let mut filter = Filter::default();
        if let Some(status) = self.status {
            filter.push("c.status", "=", status.as_str().to_owned());
        }
        if let Some(from) = from {
            filter.push("c.day", ">=", from);
        }
        if let Some(to) = to {
            filter.push("c.day", "<=", to);
        }
        Some(filter)
    }

    /// The statement that counts the orders on every page.
    fn total_query(&self) -> (Filter, String) {
        match self.count_filter() {
            Some(counts) => {
                let condition = counts.where_clause();
                (
                    counts,
                    format!(
                        "SELECT CAST(COALESCE(SUM(c.orders), 0) AS BIGINT) AS total \
                         FROM rm_order_counts c WHERE {condition}"
                    ),
                )
            }
            None => {
                let orders = self.filter();
                let condition = orders.where_clause();
                (
                    orders,
                    format!("SELECT COUNT(*) AS total FROM rm_orders o WHERE {condition}"),
                )
            }
        }
    }
}

fn view_of(text: &str) -> anyhow::Result<OrderView> {
    serde_json::from_str(text).context("bad stored order view")
}

/// Which orders match a query, and what one order looks like (`rm_orders`).
#[derive(Clone, Debug)]
pub struct OrderBook {
    pool: AnyPool,
    consistency: Consistency,
    views: ViewCache<OrderView>,
}

/// The kind of the order views in the cache (`{namespace}:view:order:{id}`).
pub const ORDER_VIEWS: &str = "order";

impl OrderBook {
    /// Over the read models in `pool`, caching order views in process as `config` says.
    pub fn new(pool: AnyPool, consistency: Consistency, config: &QueryConfig) -> Self {
        let local = LocalConfig {
            capacity: config.order_cache_capacity,
            ttl: config.order_cache_ttl,
        };
        Self {
            pool,
            consistency,
            views: ViewCache::new(ORDER_VIEWS, &local),
        }
    }

    /// The same book with `shared` (Redis) behind its in-process cache.
    #[must_use]
    pub fn with_shared_cache(mut self, shared: SharedViews) -> Self {
        self.views = self.views.with_shared(shared);
        self
    }

    /// The order view cache (for diagnostics and tests).
    pub fn views(&self) -> &ViewCache<OrderView> {
        &self.views
    }

    /// One page of the orders matching `query`, newest first, with the total over all
    /// pages and, when more follow, the cursor of the next page.
    ///
    /// # Errors
    /// When the read models cannot be read.
    pub async fn list(&self, query: &OrderQuery) -> Result<OrderPage, ApiError> {
        // The total counts every page, so not the cursor's condition.
        let (counted, count) = query.total_query();
        let total: i64 = counted
            .query(count)
            .fetch_one(&self.pool)
            .await
            .map_err(internal)?
            .try_get("total")
            .map_err(internal)?;
        let mut filter = query.filter();
        let offset = match &query.cursor {
            Some(cursor) => {
                let at = filter.bind(Bind::Text(cursor.created_at.clone()));
                let id = filter.bind(Bind::Text(cursor.id.clone()));
                filter.require(format!("(o.created_at, o.id) < ({at}, {id})"));
                0
            }
            None => i64::from(query.page - 1) * i64::from(query.page_size),
        };
        let n = filter.bound();
        // One more than the page: whether a next page exists.
        let rows = filter
            .query(format!(
                "SELECT o.view FROM rm_orders o WHERE {} \
                 ORDER BY o.created_at DESC, o.id DESC LIMIT ${} OFFSET ${}",
                filter.where_clause(),
                n + 1,
                n + 2
            ))
            .bind(i64::from(query.page_size) + 1)
            .bind(offset)
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        let mut items = rows
            .iter()
            .map(|row| view_of(&row.try_get::<String, _>("view")?))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let more = items.len() > query.page_size as usize;
        items.truncate(query.page_size as usize);
        let next_cursor = items
            .last()
            .filter(|_| more)
            .map(|last| OrderCursor::after(last).encode());
        Ok(OrderPage {
            items,
            page: query.page,
            page_size: query.page_size,
            total: u64::try_from(total).map_err(internal)?,
            next_cursor,
        })
    }

    /// The order `id` (`None`: no such order, or a malformed id), whoever placed it: the
    /// caller decides who may see it.
    ///
    /// # Errors
    /// When the read models cannot be read.
    pub async fn get(&self, id: &str) -> Result<Option<OrderView>, ApiError> {
        let Ok(id) = id.parse::<Uuid>() else {
            return Ok(None);
        };
        let id = id.to_string();
        // Read before the row, so an entry is never labelled newer than its content.
        let as_of = self.consistency.position(OrdersProjection::NAME).await?;
        let fetched = self
            .views
            .get(
                &id,
                as_of,
                || order_version(&self.pool, &id),
                || render_order(&self.pool, &id),
            )
            .await
            .map_err(ApiError::Internal)?;
        Ok(fetched.view)
    }
}

/// The version of order `id` the read model holds (`None`: no such order).
///
/// # Errors
/// When the read model cannot be read.
pub async fn order_version(pool: &AnyPool, id: &str) -> anyhow::Result<Option<u64>> {
    let version: Option<i64> = sqlx::query_scalar("SELECT version FROM rm_orders WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(version.map(u64::try_from).transpose()?)
}

/// The view of order `id` with its version, as the read model holds it (`None`: no such
/// order). Every cached order view is rendered here.
///
/// # Errors
/// When the read model cannot be read or holds an undecodable view.
pub async fn render_order(pool: &AnyPool, id: &str) -> anyhow::Result<Option<(u64, OrderView)>> {
    let mut found = render_orders(pool, &[id.to_owned()]).await?;
    Ok(found.pop().map(|(_, version, view)| (version, view)))
}

/// The stored views of the orders `ids` that exist, with their versions, in a few
/// statements however many there are (the view-cache writer renders a whole batch's).
///
/// # Errors
/// When the read model cannot be read or holds a bad view.
pub async fn render_orders(
    pool: &AnyPool,
    ids: &[String],
) -> anyhow::Result<Vec<(String, u64, OrderView)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = pool.acquire().await?;
    let rows = projector::batch::fetch_in(
        &mut conn,
        "SELECT id, version, view FROM rm_orders WHERE id IN",
        "",
        ids,
    )
    .await?;
    rows.iter()
        .map(|row| {
            let version = u64::try_from(row.try_get::<i64, _>("version")?)?;
            Ok((
                row.try_get("id")?,
                version,
                view_of(&row.try_get::<String, _>("view")?)?,
            ))
        })
        .collect()
}

/// An order's events, straight from the event store (the source of truth, so always
/// current), and the order they fold into.
#[derive(Clone)]
pub struct OrderHistory {
    store: Arc<dyn EventStore>,
}

/// An order's audit trail with the state it folds into.
#[derive(Clone, Debug)]
pub struct Trail {
    /// The folded order (its customer decides who may read the trail).
    pub order: OrderState,
    /// Every event of the order, in stream order.
    pub events: Vec<OrderEventView>,
}

impl OrderHistory {
    /// Over the log `store`.
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self { store }
    }

    /// The events of order `id` (`None`: no such order, or a malformed id).
    ///
    /// # Errors
    /// When the store cannot be read or holds an undecodable order event.
    pub async fn trail(&self, id: &str) -> Result<Option<Trail>, ApiError> {
        let Ok(id) = id.parse::<Uuid>() else {
            return Ok(None);
        };
        let stream = StreamId::of(Order::NAME, OrderId::new(id));
        let mut order = OrderState::default();
        let mut events = Vec::new();
        let mut from = 1;
        loop {
            const PAGE: usize = 500;
            let batch = self.store.read_stream(&stream, from, PAGE).await?;
            let done = batch.len() < PAGE;
            for recorded in batch {
                let event: OrderEvent = decode(
                    &recorded.event_type,
                    recorded.schema_version,
                    std::sync::Arc::unwrap_or_clone(recorded.payload),
                )
                .with_context(|| format!("undecodable event in {stream}"))?;
                order = Order::evolve(order, &event);
                from = recorded.version + 1;
                events.push(OrderEventView {
                    event_id: recorded.event_id.to_string(),
                    event_type: event.event_type().to_owned(),
                    version: recorded.version,
                    position: recorded.position,
                    at: timestamp(recorded.recorded_at),
                    actor: recorded.metadata.actor,
                    // Re-encoded, so old schemas are shown upcast.
                    data: encode(&event).1,
                });
            }
            if done {
                break;
            }
        }
        Ok(order.exists().then_some(Trail { order, events }))
    }
}

/// Customers' profiles (`rm_customers`).
#[derive(Clone, Debug)]
pub struct CustomerDirectory {
    pool: AnyPool,
}

impl CustomerDirectory {
    /// Over the read models in `pool`.
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// The profile of customer `id` (`None`: not seen yet, or not a customer).
    ///
    /// # Errors
    /// When the read models cannot be read.
    pub async fn profile(&self, id: AccountId) -> Result<Option<CustomerProfileView>, ApiError> {
        let row = sqlx::query(
            "SELECT id, name, email, mobile_number, gender, registered_at FROM rm_customers \
             WHERE id = $1 AND role = 'CUSTOMER'",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(internal)?;
        row.map(|row| {
            Ok(CustomerProfileView {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                email: row.try_get("email")?,
                mobile_number: row.try_get("mobile_number")?,
                gender: row.try_get("gender")?,
                registered_at: row.try_get("registered_at")?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| internal(e))
    }
}

/// How sales are grouped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GroupBy {
    /// By UTC day of placement (`day`, the default).
    #[default]
    Day,
    /// By product (`product`).
    Product,
    /// By day and product (`day,product`).
    DayProduct,
}

/// A validated sales query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SalesQuery {
    /// First day (inclusive).
    pub from: Option<NaiveDate>,
    /// Last day (inclusive).
    pub to: Option<NaiveDate>,
    /// The grouping.
    pub group_by: GroupBy,
}

impl SalesQuery {
    /// Validates the query string's pairs. Unknown or repeated parameters are refused.
    ///
    /// # Errors
    /// 400 (`invalid_query`) naming the parameter at fault.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut query = Self::default();
        let mut seen = Vec::new();
        for (key, value) in pairs {
            once(&mut seen, key)?;
            match key.as_str() {
                "from" => query.from = Some(TimeBound::parse(key, value)?.day()),
                "to" => query.to = Some(TimeBound::parse(key, value)?.day()),
                "groupBy" => {
                    query.group_by = match value.as_str() {
                        "day" => GroupBy::Day,
                        "product" => GroupBy::Product,
                        "day,product" | "product,day" => GroupBy::DayProduct,
                        _ => {
                            return Err(ApiError::invalid_query(
                                "groupBy must be day, product or day,product",
                            ));
                        }
                    };
                }
                "minPosition" => {}
                other => {
                    return Err(ApiError::invalid_query(format!(
                        "unknown parameter {other}"
                    )));
                }
            }
        }
        if let (Some(from), Some(to)) = (query.from, query.to)
            && from > to
        {
            return Err(ApiError::invalid_query("from must not be after to"));
        }
        Ok(query)
    }

    fn filter(&self) -> Filter {
        let mut filter = Filter::default();
        if let Some(from) = self.from {
            filter.push("day", ">=", from.format("%Y-%m-%d").to_string());
        }
        if let Some(to) = self.to {
            filter.push("day", "<=", to.format("%Y-%m-%d").to_string());
        }
        filter
    }
}

/// Revenue, orders and units by day and product (`rm_sales_daily`, `rm_sales_days`).
#[derive(Clone, Debug)]
pub struct SalesFigures {
    pool: AnyPool,
}

impl SalesFigures {
    /// Over the read models in `pool`.
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// The sales report `query` asks for.
    ///
    /// # Errors
    /// When the read models cannot be read.
    pub async fn report(&self, query: &SalesQuery) -> Result<SalesReport, ApiError> {
        let filter = query.filter();
        let condition = filter.where_clause();
        // SUM is cast back to BIGINT: PostgreSQL sums BIGINTs as NUMERIC.
        let sql = match query.group_by {
            GroupBy::Day => format!(
                "SELECT day, NULL AS product_id, currency, orders, units, revenue \
                 FROM rm_sales_days WHERE {condition} ORDER BY day, currency"
            ),
            GroupBy::Product => format!(
                "SELECT NULL AS day, product_id, currency, \
                     CAST(SUM(orders) AS BIGINT) AS orders, CAST(SUM(units) AS BIGINT) AS units, \
                     CAST(SUM(revenue) AS BIGINT) AS revenue \
                 FROM rm_sales_daily WHERE {condition} \
                 GROUP BY product_id, currency ORDER BY product_id, currency"
            ),
            GroupBy::DayProduct => format!(
                "SELECT day, product_id, currency, orders, units, revenue \
                 FROM rm_sales_daily WHERE {condition} ORDER BY day, product_id, currency"
            ),
        };
        let items = filter
            .query(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?
            .iter()
            .map(|row| {
                Ok(SalesItem {
                    day: row.try_get("day")?,
                    product_id: row.try_get("product_id")?,
                    orders: row.try_get("orders")?,
                    units: row.try_get("units")?,
                    revenue: MoneyView {
                        amount: row.try_get("revenue")?,
                        currency: row.try_get("currency")?,
                    },
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(internal)?;
        let mut totals = SalesTotals {
            orders: 0,
            units: 0,
            revenue: Vec::new(),
        };
        let rows = filter
            .query(format!(
                "SELECT currency, CAST(SUM(orders) AS BIGINT) AS orders, \
                     CAST(SUM(units) AS BIGINT) AS units, CAST(SUM(revenue) AS BIGINT) AS revenue \
                 FROM rm_sales_days WHERE {condition} GROUP BY currency ORDER BY currency"
            ))
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        for row in rows {
            totals.orders += row.try_get::<i64, _>("orders").map_err(internal)?;
            totals.units += row.try_get::<i64, _>("units").map_err(internal)?;
            totals.revenue.push(MoneyView {
                amount: row.try_get("revenue").map_err(internal)?,
                currency: row.try_get("currency").map_err(internal)?,
            });
        }
        Ok(SalesReport { items, totals })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::pairs_of;

    #[test]
    fn a_cursor_reads_back_as_it_was_made_in_the_stored_time_format() {
        let cursor = OrderCursor {
            created_at: "2025-06-16T15:06:40.000001Z".into(),
            id: "0193a0e8-0000-7000-8000-000000000001".into(),
        };
        assert_eq!(OrderCursor::parse(&cursor.encode()).unwrap(), cursor);
        // Another spelling of the same instant is stored text again.
        let other = URL_SAFE_NO_PAD
            .encode("2025-06-16T17:06:40.000001+02:00 0193A0E8-0000-7000-8000-000000000001");
        assert_eq!(OrderCursor::parse(&other).unwrap(), cursor);
    }

    #[test]
    fn anything_else_is_not_a_cursor() {
        for token in [
            String::new(),
            "!!".into(),
            URL_SAFE_NO_PAD.encode("2025-06-16T15:06:40Z"),
            URL_SAFE_NO_PAD.encode("yesterday 0193a0e8-0000-7000-8000-000000000001"),
            URL_SAFE_NO_PAD.encode("2025-06-16T15:06:40Z 42"),
            URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
        ] {
            assert!(OrderCursor::parse(&token).is_err(), "{token}");
        }
    }

    #[test]
    fn a_cursor_excludes_a_page_number() {
        let cursor = OrderCursor {
            created_at: "2025-06-16T15:06:40.000001Z".into(),
            id: "0193a0e8-0000-7000-8000-000000000001".into(),
        }
        .encode();
        let query =
            OrderQuery::parse(&pairs_of(&[("cursor", &cursor), ("pageSize", "5")]), None).unwrap();
        assert_eq!((query.page, query.page_size), (1, 5));
        assert!(query.cursor.is_some());
        assert!(OrderQuery::parse(&pairs_of(&[("cursor", &cursor), ("page", "1")]), None).is_err());
    }

    fn total_sql(query: &[(&str, &str)], own: Option<AccountId>) -> String {
        OrderQuery::parse(&pairs_of(query), own)
            .unwrap()
            .total_query()
            .1
    }

    #[test]
    fn the_total_of_a_status_or_whole_days_is_read_from_the_counts() {
        for query in [
            &[][..],
            &[("status", "PAID")],
            &[("from", "2026-12-01"), ("to", "2026-12-07")],
            &[("status", "SHIPPED"), ("to", "2026-12-07"), ("page", "3")],
        ] {
            let sql = total_sql(query, None);
            assert!(sql.contains("FROM rm_order_counts"), "{query:?}: {sql}");
        }
        assert!(
            total_sql(&[("status", "PAID"), ("from", "2026-12-01")], None)
                .ends_with("WHERE c.status = $1 AND c.day >= $2")
        );
    }

    #[test]
    fn the_total_of_a_customer_or_an_instant_counts_the_orders() {
        let customer = AccountId::new(Uuid::nil());
        for (query, own) in [
            (
                &[("customerId", "00000000-0000-0000-0000-000000000001")][..],
                None,
            ),
            (&[][..], Some(customer)),
            (&[("from", "2026-12-01T10:00:00Z")][..], None),
            (
                &[("from", "2026-12-01"), ("to", "2026-12-07T23:00:00+01:00")][..],
                None,
            ),
        ] {
            let sql = total_sql(query, own);
            assert!(
                sql.contains("COUNT(*) AS total FROM rm_orders o"),
                "{query:?}: {sql}"
            );
        }
    }
}
