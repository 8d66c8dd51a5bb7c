//! The generic pieces of the raw types: absent/`null`/value fields, objects with free-form
//! keys, and a lone `null`.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// A JSON `null` and nothing else (a route's `"circuit_breaker": null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Null;

/// A field that `null` turns off.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Toggle<T> {
    /// Not written: inherited from the enclosing scope.
    #[default]
    Unset,
    /// Written as `null`: turned off in this scope.
    Off,
    /// Written as a value.
    On(T),
}

impl<T> Toggle<T> {
    pub fn is_unset(&self) -> bool {
        matches!(self, Toggle::Unset)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Toggle<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Only called when the field is present: absence is `#[serde(default)]`.
        Ok(Option::<T>::deserialize(deserializer)?.map_or(Toggle::Off, Toggle::On))
    }
}

impl<T: Serialize> Serialize for Toggle<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Toggle::Unset | Toggle::Off => serializer.serialize_none(),
            Toggle::On(value) => value.serialize(serializer),
        }
    }
}

/// A JSON object with free-form keys (cluster names, route names, header names), in the order
/// written. Unlike a map type it refuses a key written twice instead of keeping the last.
#[derive(Debug, Clone, PartialEq)]
pub struct Entries<T>(pub Vec<(String, T)>);

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for EntriesVisitor<T> {
            type Value = Entries<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, T)> = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, T>()? {
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(serde::de::Error::custom(format!("duplicate key `{key}`")));
                    }
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

impl<T: Serialize> Serialize for Entries<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// For `deserialize_with` on an `Option` field: the field is present, so `null` is an error
/// (serde's own `Option` would read `null` as absent).
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// A field of a raw type that may be left out: an `Option` (which refuses `null`, see
/// [`present`]) or a [`Toggle`] (which reads `null` as off). Lets one serde attribute serve both.
pub trait Written<'de>: Sized {
    /// Whether the field was left out (and so is not written back).
    fn is_unset(&self) -> bool;
    /// Reads the field when it is present.
    fn written<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

impl<'de, T: Deserialize<'de>> Written<'de> for Option<T> {
    fn is_unset(&self) -> bool {
        self.is_none()
    }
    fn written<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        present(deserializer)
    }
}

impl<'de, T: Deserialize<'de>> Written<'de> for Toggle<T> {
    fn is_unset(&self) -> bool {
        Toggle::is_unset(self)
    }
    fn written<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Toggle::deserialize(deserializer)
    }
}
