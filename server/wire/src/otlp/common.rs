//! `opentelemetry.proto.common.v1` and `resource.v1`, and `google.rpc.Status`.

/// `AnyValue`: a string, bool, integer, double, array, key/value list or bytes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyValue {
    #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<any_value::Value>,
}

pub mod any_value {
    /// The one value an `AnyValue` holds.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(string, tag = "1")]
        StringValue(String),
        #[prost(bool, tag = "2")]
        BoolValue(bool),
        #[prost(int64, tag = "3")]
        IntValue(i64),
        #[prost(double, tag = "4")]
        DoubleValue(f64),
        #[prost(message, tag = "5")]
        ArrayValue(super::ArrayValue),
        #[prost(message, tag = "6")]
        KvlistValue(super::KeyValueList),
        #[prost(bytes = "vec", tag = "7")]
        BytesValue(Vec<u8>),
    }
}

/// `ArrayValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ArrayValue {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<AnyValue>,
}

/// `KeyValueList`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValueList {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<KeyValue>,
}

/// `KeyValue`: an attribute.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// `InstrumentationScope`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InstrumentationScope {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
    #[prost(uint32, tag = "4")]
    pub dropped_attributes_count: u32,
}

/// `opentelemetry.proto.resource.v1.Resource`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Resource {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
    #[prost(uint32, tag = "2")]
    pub dropped_attributes_count: u32,
}

/// `google.rpc.Status`, the body of an OTLP error answer (its `details` left out).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

impl AnyValue {
    /// A string value.
    pub fn string(s: impl Into<String>) -> AnyValue {
        AnyValue {
            value: Some(any_value::Value::StringValue(s.into())),
        }
    }

    /// The value as text: a string as it is, bytes in hex, anything else in JSON (arrays and
    /// key/value lists as JSON arrays and objects), nothing as the empty string.
    pub fn to_text(&self) -> String {
        match &self.value {
            None => String::new(),
            Some(any_value::Value::StringValue(s)) => s.clone(),
            Some(any_value::Value::BytesValue(b)) => hex(b),
            Some(_) => self.to_json().to_string(),
        }
    }

    /// The value as a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            None => J::Null,
            Some(any_value::Value::StringValue(s)) => J::from(s.as_str()),
            Some(any_value::Value::BoolValue(b)) => J::from(*b),
            Some(any_value::Value::IntValue(i)) => J::from(*i),
            Some(any_value::Value::DoubleValue(d)) => J::from(*d),
            Some(any_value::Value::BytesValue(b)) => J::from(hex(b)),
            Some(any_value::Value::ArrayValue(a)) => {
                J::Array(a.values.iter().map(AnyValue::to_json).collect())
            }
            Some(any_value::Value::KvlistValue(l)) => J::Object(
                l.values
                    .iter()
                    .map(|kv| {
                        (
                            kv.key.clone(),
                            kv.value.as_ref().map_or(J::Null, AnyValue::to_json),
                        )
                    })
                    .collect(),
            ),
        }
    }
}

/// Lowercase hex of `bytes` (how OTLP/JSON writes trace and span ids).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}
