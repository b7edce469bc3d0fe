//! The shop's order items and products: where they are (`cda_item_config`, one row per
//! database; by default `order_items` and `products` beside the orders), checked against the
//! catalog like the orders (`resolve`), and the SQL functions that change and show them
//! (`configure_items`, through its SQL wrapper over `_configure_items`, and
//! `item_configuration`).

use pgrx::prelude::*;

use super::config::Config;
use super::tables::{check_columns_readable, find_column, find_table, wrong_type};
use super::{ext_schema, validate};
use crate::toolbox::errors::*;
use crate::toolbox::ident::{qualified, quote_ident};
use crate::toolbox::statement::{InsertRow, execute};

/// The settings `configure_items` changes, as its arguments name them.
pub const SETTINGS: &[&str] = &[
    "order_items_table",
    "item_order_id_column",
    "item_product_id_column",
    "quantity_column",
    "unit_price_column",
    "products_table",
    "product_id_column",
    "category_column",
    "non_product_column",
    "order_id_column",
];

/// Where the items and products are. `Default` (given the orders' schema) holds the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemConfig {
    /// The orders table's key, which the items refer to.
    pub order_id_column: String,
    pub items_schema: String,
    pub items_table: String,
    pub item_order_id_column: String,
    pub item_product_id_column: String,
    pub quantity_column: String,
    pub unit_price_column: String,
    pub products_schema: String,
    pub products_table: String,
    pub product_id_column: String,
    pub category_column: String,
    /// A boolean column of the products: true for what is not a product (postage, fees,
    /// vouchers). None: every product is one.
    pub non_product_column: Option<String>,
    pub configured_by: Option<String>,
}

impl ItemConfig {
    /// The defaults: `order_items(order_id, product_id, quantity, unit_price)` and
    /// `products(product_id, category)` in the orders table's schema.
    pub fn defaults(config: &Config) -> ItemConfig {
        let s = |v: &str| v.to_string();
        ItemConfig {
            order_id_column: s("order_id"),
            items_schema: config.orders_schema.clone(),
            items_table: s("order_items"),
            item_order_id_column: s("order_id"),
            item_product_id_column: s("product_id"),
            quantity_column: s("quantity"),
            unit_price_column: s("unit_price"),
            products_schema: config.orders_schema.clone(),
            products_table: s("products"),
            product_id_column: s("product_id"),
            category_column: s("category"),
            non_product_column: None,
            configured_by: None,
        }
    }

    /// The stored item configuration, or the defaults beside `config`'s orders.
    pub fn load(ext: &str, config: &Config) -> ItemConfig {
        let sql = format!(
            "SELECT order_id_column, items_schema, items_table, item_order_id_column, item_product_id_column, \
                    quantity_column, unit_price_column, products_schema, products_table, product_id_column, \
                    category_column, non_product_column, configured_by::text AS configured_by \
             FROM {ext}.cda_item_config WHERE singleton"
        );
        let stored = Spi::connect(|c| {
            let t = c.select(sql.as_str(), None, &[])?;
            if t.is_empty() {
                return Ok(None);
            }
            let row = t.first();
            let text = |name: &str| -> Result<String, pgrx::spi::SpiError> {
                Ok(row.get_by_name::<String, _>(name)?.unwrap_or_default())
            };
            Ok::<_, pgrx::spi::SpiError>(Some(ItemConfig {
                order_id_column: text("order_id_column")?,
                items_schema: text("items_schema")?,
                items_table: text("items_table")?,
                item_order_id_column: text("item_order_id_column")?,
                item_product_id_column: text("item_product_id_column")?,
                quantity_column: text("quantity_column")?,
                unit_price_column: text("unit_price_column")?,
                products_schema: text("products_schema")?,
                products_table: text("products_table")?,
                product_id_column: text("product_id_column")?,
                category_column: text("category_column")?,
                non_product_column: row.get_by_name::<String, _>("non_product_column")?,
                configured_by: row.get_by_name::<String, _>("configured_by")?,
            }))
        })
        .or_raise("reading cda_item_config");
        stored.unwrap_or_else(|| ItemConfig::defaults(config))
    }

    fn store(&self, ext: &str) {
        let c = self.clone();
        let mut row = InsertRow::default();
        row.expr("singleton", "true")
            .arg("order_id_column", c.order_id_column)
            .arg("items_schema", c.items_schema)
            .arg("items_table", c.items_table)
            .arg("item_order_id_column", c.item_order_id_column)
            .arg("item_product_id_column", c.item_product_id_column)
            .arg("quantity_column", c.quantity_column)
            .arg("unit_price_column", c.unit_price_column)
            .arg("products_schema", c.products_schema)
            .arg("products_table", c.products_table)
            .arg("product_id_column", c.product_id_column)
            .arg("category_column", c.category_column)
            .arg("non_product_column", c.non_product_column)
            .expr("updated_at", "pg_catalog.now()")
            .arg_as(
                "configured_by",
                c.configured_by.unwrap_or_default(),
                "{}::pg_catalog.name",
            );
        let (sql, args) = row.upsert(&format!("{ext}.cda_item_config"), "singleton", &[], "");
        execute(&sql, &args, "storing cda_item_config");
    }

    fn rows(&self) -> Vec<(String, String)> {
        let s = |k: &str, v: &str| (k.to_string(), v.to_string());
        vec![
            s("order_id_column", &self.order_id_column),
            s(
                "order_items_table",
                &qualified(&self.items_schema, &self.items_table),
            ),
            s("item_order_id_column", &self.item_order_id_column),
            s("item_product_id_column", &self.item_product_id_column),
            s("quantity_column", &self.quantity_column),
            s("unit_price_column", &self.unit_price_column),
            s(
                "products_table",
                &qualified(&self.products_schema, &self.products_table),
            ),
            s("product_id_column", &self.product_id_column),
            s("category_column", &self.category_column),
            s(
                "non_product_column",
                self.non_product_column.as_deref().unwrap_or(""),
            ),
        ]
    }
}

/// The items and products as a read uses them: quoted names for the SQL it generates.
#[derive(Debug, Clone)]
pub struct ItemSource {
    /// The orders' key column, quoted.
    pub order_id: String,
    /// The items table, schema-qualified and quoted.
    pub items: String,
    pub item_order_id: String,
    pub item_product_id: String,
    pub quantity: String,
    pub unit_price: String,
    pub products: String,
    pub product_id: String,
    pub category: String,
    pub non_product: Option<String>,
}

fn id_column(rel: pg_sys::Oid, table: &str, column: &str, setting: &str) -> i16 {
    let col = find_column(rel, table, column, setting);
    if ![pg_sys::INT2OID, pg_sys::INT4OID, pg_sys::INT8OID].contains(&col.base_type) {
        wrong_type(
            column,
            table,
            &col,
            "an id must be smallint, integer or bigint",
            setting,
        );
    }
    col.attnum
}

fn number_column(rel: pg_sys::Oid, table: &str, column: &str, setting: &str) -> i16 {
    let col = find_column(rel, table, column, setting);
    if col.category != "N" {
        wrong_type(
            column,
            table,
            &col,
            "it must be a number (integer, numeric or floating point)",
            setting,
        );
    }
    col.attnum
}

/// Checks `items` against the catalog (tables, columns, types) and that the role that set it may
/// read every column it names; the orders table is `config`'s.
pub fn resolve(config: &Config, items: &ItemConfig) -> ItemSource {
    let source = validate(config);
    let orders_display = qualified(&config.orders_schema, &config.orders_table);
    let items_display = qualified(&items.items_schema, &items.items_table);
    let products_display = qualified(&items.products_schema, &items.products_table);
    let items_rel = find_table(
        &items.items_schema,
        &items.items_table,
        "order items",
        "order_items_table",
    );
    let products_rel = find_table(
        &items.products_schema,
        &items.products_table,
        "products",
        "products_table",
    );
    let order_id = id_column(
        source.orders_rel,
        &orders_display,
        &items.order_id_column,
        "order_id_column",
    );
    let item_order = id_column(
        items_rel,
        &items_display,
        &items.item_order_id_column,
        "item_order_id_column",
    );
    let item_product = id_column(
        items_rel,
        &items_display,
        &items.item_product_id_column,
        "item_product_id_column",
    );
    let quantity = number_column(
        items_rel,
        &items_display,
        &items.quantity_column,
        "quantity_column",
    );
    let price = number_column(
        items_rel,
        &items_display,
        &items.unit_price_column,
        "unit_price_column",
    );
    let product = id_column(
        products_rel,
        &products_display,
        &items.product_id_column,
        "product_id_column",
    );
    let category = find_column(
        products_rel,
        &products_display,
        &items.category_column,
        "category_column",
    )
    .attnum;
    let non_product = items.non_product_column.as_ref().map(|c| {
        let col = find_column(products_rel, &products_display, c, "non_product_column");
        if col.base_type != pg_sys::BOOLOID {
            wrong_type(
                c,
                &products_display,
                &col,
                "it must be boolean (true for what is not a product)",
                "non_product_column",
            );
        }
        col.attnum
    });
    if let Some(role) = &items.configured_by {
        let mut columns = vec![
            (source.orders_rel, order_id, orders_display.as_str()),
            (items_rel, item_order, items_display.as_str()),
            (items_rel, item_product, items_display.as_str()),
            (items_rel, quantity, items_display.as_str()),
            (items_rel, price, items_display.as_str()),
            (products_rel, product, products_display.as_str()),
            (products_rel, category, products_display.as_str()),
        ];
        if let Some(n) = non_product {
            columns.push((products_rel, n, products_display.as_str()));
        }
        check_columns_readable(role, &columns, "configure_items");
    }
    ItemSource {
        order_id: quote_ident(&items.order_id_column),
        items: items_display,
        item_order_id: quote_ident(&items.item_order_id_column),
        item_product_id: quote_ident(&items.item_product_id_column),
        quantity: quote_ident(&items.quantity_column),
        unit_price: quote_ident(&items.unit_price_column),
        products: products_display,
        product_id: quote_ident(&items.product_id_column),
        category: quote_ident(&items.category_column),
        non_product: items.non_product_column.as_deref().map(quote_ident),
    }
}

/// The configured items and products of `ctx`'s database, resolved.
pub fn of_context(ctx: &super::Context) -> ItemSource {
    resolve(&ctx.config, &ItemConfig::load(&ctx.ext, &ctx.config))
}

/// Changes where the order items and products are read from; NULL arguments keep their value,
/// and an empty `non_product_column` removes it. The SQL wrapper `configure_items` takes
/// regclass arguments, resolved in the caller's search_path.
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe, name = "_configure_items")]
#[search_path(pg_catalog, pg_temp)]
fn configure_items_impl(
    order_items_table: Option<pg_sys::Oid>,
    item_order_id_column: Option<String>,
    item_product_id_column: Option<String>,
    quantity_column: Option<String>,
    unit_price_column: Option<String>,
    products_table: Option<pg_sys::Oid>,
    product_id_column: Option<String>,
    category_column: Option<String>,
    non_product_column: Option<String>,
    order_id_column: Option<String>,
) -> TableIterator<'static, (name!(setting, String), name!(value, String))> {
    let ext = ext_schema();
    let config = Config::load(&ext);
    let mut items = ItemConfig::load(&ext, &config);
    if let Some(rel) = order_items_table {
        (items.items_schema, items.items_table) = super::configure::relation_name(rel);
    }
    if let Some(rel) = products_table {
        (items.products_schema, items.products_table) = super::configure::relation_name(rel);
    }
    let set = |slot: &mut String, v: Option<String>| {
        if let Some(v) = v {
            *slot = v;
        }
    };
    set(&mut items.item_order_id_column, item_order_id_column);
    set(&mut items.item_product_id_column, item_product_id_column);
    set(&mut items.quantity_column, quantity_column);
    set(&mut items.unit_price_column, unit_price_column);
    set(&mut items.product_id_column, product_id_column);
    set(&mut items.category_column, category_column);
    set(&mut items.order_id_column, order_id_column);
    if let Some(c) = non_product_column {
        items.non_product_column = (!c.is_empty()).then_some(c);
    }
    items.configured_by = Some(
        Spi::get_one::<String>("SELECT CURRENT_USER::pg_catalog.text")
            .or_raise("reading the current user")
            .unwrap_or_default(),
    );
    resolve(&config, &items);
    items.store(&ext);
    TableIterator::new(items.rows())
}

/// The item configuration in effect, as (setting, value) rows.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn item_configuration() -> TableIterator<'static, (name!(setting, String), name!(value, String))> {
    let ext = ext_schema();
    TableIterator::new(ItemConfig::load(&ext, &Config::load(&ext)).rows())
}
