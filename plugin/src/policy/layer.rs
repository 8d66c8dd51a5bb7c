//! One scope of the policy (`default`, a cluster or a route) after its fields were checked: the
//! values it sets, in domain units, and nothing for what it leaves to the scopes above.
//!
//! # Merge
//!
//! Layers merge like a JSON merge patch, in the order `default` → `clusters.<name>` →
//! `routes.<name>`: a later layer overrides only the fields it sets, nested objects
//! (`failure_rate`, `slow_call`, `fallback`, `budget`) merge field by field, and `null` turns a
//! part off. A part turned off and set again by a later layer starts from the defaults, not from
//! what the earlier layers had set before the `null`. Lists (`methods`, `failure_on`, ...) and
//! the fallback `headers` are values: a later layer replaces them whole, so a header or a method
//! can be taken away.
//!
//! # One declaration per field
//!
//! Each object of the policy (`circuit_breaker`, `retry`, ...) is declared once, in `fields`,
//! with [`objects!`]: per field its JSON form, its layer form, its default, its check (with its
//! bounds) and its reader. The macro writes from that the raw serde type (and so the schema and
//! its rules), the layer, its merge, its values with the defaults filled in, and the reader's
//! dispatch; a field added there is in all of them, and none of them can forget it. What stays
//! per field elsewhere is what the field means: its place in the domain types (`types`) and how
//! `resolve` puts it there.

pub(crate) use super::fields::{BreakerLayer, RetryLayer};
use super::json::Node;
use super::problem::At;
use super::raw::Toggle;
use super::read::object;

/// Merging a later layer over an earlier one.
pub(crate) trait Merge {
    /// `self` with every field that `later` sets taken from `later`.
    fn merge(self, later: Self) -> Self;
}

impl<T> Merge for Option<T> {
    fn merge(self, later: Self) -> Self {
        later.or(self)
    }
}

/// A plain value (a header name): the later one wins whole.
impl Merge for String {
    fn merge(self, later: Self) -> Self {
        later
    }
}

impl<T: Merge + Default> Merge for Toggle<T> {
    fn merge(self, later: Self) -> Self {
        match (self, later) {
            (earlier, Toggle::Unset) => earlier,
            (_, Toggle::Off) => Toggle::Off,
            (Toggle::On(earlier), Toggle::On(later)) => Toggle::On(earlier.merge(later)),
            (_, Toggle::On(later)) => Toggle::On(T::default().merge(later)),
        }
    }
}

/// A field of a layer, which no scope may have set: filled with its default when unset.
pub(crate) trait Slot {
    /// The field's value once filled.
    type Value;
    /// The value set, or `default()` when no scope set one.
    fn fill(self, default: impl FnOnce() -> Self::Value) -> Self::Value;
}

impl<T> Slot for Option<T> {
    type Value = T;
    #[inline(always)]
    fn fill(self, default: impl FnOnce() -> T) -> T {
        self.unwrap_or_else(default)
    }
}

/// A part that `null` turns off stays off; only an unset one takes the default (which says
/// whether the part is on when no scope wrote it).
impl<T> Slot for Toggle<T> {
    type Value = Toggle<T>;
    #[inline(always)]
    fn fill(self, default: impl FnOnce() -> Toggle<T>) -> Toggle<T> {
        match self {
            Toggle::Unset => default(),
            set => set,
        }
    }
}

/// An object's fields with the type of each one's raw form (see `objects!`).
#[cfg(test)]
pub(crate) type FieldTypes = &'static [(&'static str, fn() -> std::any::TypeId)];

/// A layer read from a JSON object, field by field.
pub(crate) trait Fields: Default {
    /// The fields, in the order declared.
    const FIELDS: &'static [&'static str];
    /// Reads the known field `name` (see [`object`]).
    fn read_field(&mut self, name: &str, node: &Node, at: &mut At);
}

/// Reads an object of `L`'s fields; `at` is at it.
pub(crate) fn read_object<L: Fields>(node: &Node, at: &mut At) -> Option<L> {
    let mut layer = L::default();
    let is_object = object(node, at, L::FIELDS, &mut |name, node, at| {
        layer.read_field(name, node, at)
    });
    is_object.then_some(layer)
}

/// Implements [`Merge`] field by field.
macro_rules! merge_fields {
    ($name:ident { $($field:ident),* $(,)? }) => {
        impl Merge for $name {
            fn merge(self, later: Self) -> Self {
                $name { $($field: self.$field.merge(later.$field)),* }
            }
        }
    };
}
pub(crate) use merge_fields;

/// Declares objects of the policy, one field per line:
///
/// ```text
/// /// doc of the raw type (the schema's description)
/// RawBreaker => BreakerLayer, BreakerValues {
///     /// doc of the field (the schema's description)
///     failure_threshold: Option<i64> => Option<u32> = 5,
///         Integer(FAILURE_THRESHOLD) => |node, at, bounds| count(node, at, bounds);
/// }
/// ```
///
/// that is: the field's type in the raw serde type, its type in the layer (`Option` or
/// [`Toggle`]), its default (a value of the layer type's [`Slot::Value`]), what it must be
/// beyond its JSON type (a [`super::raw::Check`], with its bounds, if any) and how the reader
/// reads it (an expression of the JSON node, the [`super::problem::At`] and the check's bounds,
/// that returns the layer type). The bounds are written once, in the check: the schema states
/// them and the reader enforces them. It writes the raw type with its `CHECKS`; the layer with
/// its [`Merge`] and its [`Fields`] (the field names in order, for unknown-field messages, and
/// the reader's dispatch); and the values (`values()`: every field filled, defaults for what no
/// scope set).
macro_rules! objects {
    ($(
        $(#[$meta:meta])*
        $raw:ident => $layer:ident, $values:ident {
            $(
                $(#[$field_meta:meta])*
                $field:ident: $raw_ty:ty => $slot:ty = $default:expr,
                    $check:ident $(($bounds:expr))?
                    => |$node:ident, $at:ident $(, $bound:ident)?| $read:expr;
            )*
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(deny_unknown_fields)]
        pub struct $raw {
            $(
                $(#[$field_meta])*
                #[serde(
                    default,
                    skip_serializing_if = "Written::is_unset",
                    deserialize_with = "Written::written"
                )]
                pub $field: $raw_ty,
            )*
        }

        impl $raw {
            /// Each field's name and what it must be beyond its JSON type, in order.
            pub const CHECKS: &'static [(&'static str, Check)] =
                &[$((stringify!($field), Check::$check $(($bounds))?)),*];
        }

        #[cfg(test)]
        impl $raw {
            /// Each field's name and the type of its raw form, in order: the property tests
            /// generate a value for each field from its type.
            pub(crate) const FIELD_TYPES: FieldTypes =
                &[$((stringify!($field), std::any::TypeId::of::<$raw_ty>)),*];
        }

        #[derive(Debug, Clone, Default, PartialEq)]
        pub(crate) struct $layer {
            $(pub $field: $slot,)*
        }

        merge_fields!($layer { $($field),* });

        /// Every field filled: what a scope set, else the default.
        #[derive(Debug, Clone, PartialEq)]
        pub(crate) struct $values {
            $(pub $field: <$slot as Slot>::Value,)*
        }

        impl Fields for $layer {
            const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];

            fn read_field(&mut self, name: &str, node: &Node, at: &mut At) {
                match name {
                    $(stringify!($field) => {
                        let ($node, $at) = (node, at);
                        $(let $bound = $bounds;)?
                        self.$field = $read;
                    })*
                    _ => {}
                }
            }
        }

        impl $layer {
            /// The values: what is set, the defaults for the rest.
            pub fn values(self) -> $values {
                $values { $($field: Slot::fill(self.$field, || $default),)* }
            }
        }
    )*};
}
pub(crate) use objects;

/// A scope: both halves.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ScopeLayer {
    pub breaker: Toggle<BreakerLayer>,
    pub retry: Toggle<RetryLayer>,
}
merge_fields!(ScopeLayer { breaker, retry });
