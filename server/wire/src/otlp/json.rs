//! OTLP/JSON into the protobuf messages. The mapping is proto3's with OTLP's changes: keys in
//! lowerCamelCase (the proto's own snake_case names are taken too), 64-bit integers as decimal
//! strings or numbers, `traceId` and `spanId` as hex, `bytesValue` as base64, enums as
//! integers; unknown fields are ignored, as the specification requires.

use serde_json::{Map, Value};

use super::common::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, Resource, any_value,
};
use super::logs::{ExportLogsServiceRequest, LogRecord, ResourceLogs, ScopeLogs};

/// Why a JSON body is not the message: where (a path such as `resourceLogs[0].scopeLogs[1]`)
/// and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct JsonError {
    pub path: String,
    pub message: String,
}

type Result<T> = std::result::Result<T, JsonError>;

fn err<T>(path: &str, message: impl Into<String>) -> Result<T> {
    Err(JsonError {
        path: path.to_owned(),
        message: message.into(),
    })
}

/// Reads an `ExportLogsServiceRequest` from OTLP/JSON.
pub fn logs_request(body: &[u8]) -> Result<ExportLogsServiceRequest> {
    let root: Value = serde_json::from_slice(body).map_err(|e| JsonError {
        path: "body".to_owned(),
        message: format!("not JSON: {e}"),
    })?;
    let root = object(&root, "body")?;
    let mut out = ExportLogsServiceRequest::default();
    for (i, rl) in array(root, "resourceLogs", "resource_logs", "body")?
        .iter()
        .enumerate()
    {
        let path = format!("resourceLogs[{i}]");
        out.resource_logs.push(resource_logs(rl, &path)?);
    }
    Ok(out)
}

fn resource_logs(v: &Value, path: &str) -> Result<ResourceLogs> {
    let m = object(v, path)?;
    let resource = match field(m, "resource", "resource") {
        Some(r) => Some(resource(r, &format!("{path}.resource"))?),
        None => None,
    };
    let mut scope_logs = Vec::new();
    for (i, sl) in array(m, "scopeLogs", "scope_logs", path)?
        .iter()
        .enumerate()
    {
        scope_logs.push(scope_logs_of(sl, &format!("{path}.scopeLogs[{i}]"))?);
    }
    Ok(ResourceLogs {
        resource,
        scope_logs,
        schema_url: string(m, "schemaUrl", "schema_url", path)?,
    })
}

fn resource(v: &Value, path: &str) -> Result<Resource> {
    let m = object(v, path)?;
    Ok(Resource {
        attributes: attributes(m, path)?,
        dropped_attributes_count: uint(
            m,
            "droppedAttributesCount",
            "dropped_attributes_count",
            path,
        )? as u32,
    })
}

fn scope_logs_of(v: &Value, path: &str) -> Result<ScopeLogs> {
    let m = object(v, path)?;
    let scope = match field(m, "scope", "scope") {
        Some(s) => {
            let sp = format!("{path}.scope");
            let sm = object(s, &sp)?;
            Some(InstrumentationScope {
                name: string(sm, "name", "name", &sp)?,
                version: string(sm, "version", "version", &sp)?,
                attributes: attributes(sm, &sp)?,
                dropped_attributes_count: uint(
                    sm,
                    "droppedAttributesCount",
                    "dropped_attributes_count",
                    &sp,
                )? as u32,
            })
        }
        None => None,
    };
    let mut log_records = Vec::new();
    for (i, r) in array(m, "logRecords", "log_records", path)?
        .iter()
        .enumerate()
    {
        log_records.push(log_record(r, &format!("{path}.logRecords[{i}]"))?);
    }
    Ok(ScopeLogs {
        scope,
        log_records,
        schema_url: string(m, "schemaUrl", "schema_url", path)?,
    })
}

fn log_record(v: &Value, path: &str) -> Result<LogRecord> {
    let m = object(v, path)?;
    let body = match field(m, "body", "body") {
        Some(b) => Some(any(b, &format!("{path}.body"))?),
        None => None,
    };
    Ok(LogRecord {
        time_unix_nano: uint(m, "timeUnixNano", "time_unix_nano", path)?,
        observed_time_unix_nano: uint(m, "observedTimeUnixNano", "observed_time_unix_nano", path)?,
        severity_number: int(m, "severityNumber", "severity_number", path)? as i32,
        severity_text: string(m, "severityText", "severity_text", path)?,
        body,
        attributes: attributes(m, path)?,
        dropped_attributes_count: uint(
            m,
            "droppedAttributesCount",
            "dropped_attributes_count",
            path,
        )? as u32,
        flags: uint(m, "flags", "flags", path)? as u32,
        trace_id: hex_field(m, "traceId", "trace_id", path)?,
        span_id: hex_field(m, "spanId", "span_id", path)?,
        event_name: string(m, "eventName", "event_name", path)?,
    })
}

fn attributes(m: &Map<String, Value>, path: &str) -> Result<Vec<KeyValue>> {
    let mut out = Vec::new();
    for (i, kv) in array(m, "attributes", "attributes", path)?
        .iter()
        .enumerate()
    {
        out.push(key_value(kv, &format!("{path}.attributes[{i}]"))?);
    }
    Ok(out)
}

fn key_value(v: &Value, path: &str) -> Result<KeyValue> {
    let m = object(v, path)?;
    let value = match field(m, "value", "value") {
        Some(x) => Some(any(x, &format!("{path}.value"))?),
        None => None,
    };
    Ok(KeyValue {
        key: string(m, "key", "key", path)?,
        value,
    })
}

fn any(v: &Value, path: &str) -> Result<AnyValue> {
    use any_value::Value as V;
    let m = object(v, path)?;
    let value = if let Some(s) = field(m, "stringValue", "string_value") {
        match s {
            Value::String(s) => Some(V::StringValue(s.clone())),
            _ => return err(path, "stringValue must be a string"),
        }
    } else if let Some(b) = field(m, "boolValue", "bool_value") {
        match b {
            Value::Bool(b) => Some(V::BoolValue(*b)),
            _ => return err(path, "boolValue must be true or false"),
        }
    } else if field(m, "intValue", "int_value").is_some() {
        Some(V::IntValue(int(m, "intValue", "int_value", path)?))
    } else if let Some(d) = field(m, "doubleValue", "double_value") {
        match d {
            Value::Number(n) => Some(V::DoubleValue(n.as_f64().unwrap_or(f64::NAN))),
            Value::String(s) => match s.as_str() {
                "NaN" => Some(V::DoubleValue(f64::NAN)),
                "Infinity" => Some(V::DoubleValue(f64::INFINITY)),
                "-Infinity" => Some(V::DoubleValue(f64::NEG_INFINITY)),
                _ => match s.parse() {
                    Ok(d) => Some(V::DoubleValue(d)),
                    Err(_) => return err(path, format!("doubleValue {s:?} is not a number")),
                },
            },
            _ => return err(path, "doubleValue must be a number"),
        }
    } else if let Some(a) = field(m, "arrayValue", "array_value") {
        let ap = format!("{path}.arrayValue");
        let am = object(a, &ap)?;
        let mut values = Vec::new();
        for (i, x) in array(am, "values", "values", &ap)?.iter().enumerate() {
            values.push(any(x, &format!("{ap}.values[{i}]"))?);
        }
        Some(V::ArrayValue(ArrayValue { values }))
    } else if let Some(l) = field(m, "kvlistValue", "kvlist_value") {
        let lp = format!("{path}.kvlistValue");
        let lm = object(l, &lp)?;
        let mut values = Vec::new();
        for (i, x) in array(lm, "values", "values", &lp)?.iter().enumerate() {
            values.push(key_value(x, &format!("{lp}.values[{i}]"))?);
        }
        Some(V::KvlistValue(KeyValueList { values }))
    } else if let Some(b) = field(m, "bytesValue", "bytes_value") {
        match b {
            Value::String(s) => match base64(s) {
                Some(bytes) => Some(V::BytesValue(bytes)),
                None => return err(path, "bytesValue is not base64"),
            },
            _ => return err(path, "bytesValue must be a base64 string"),
        }
    } else {
        None
    };
    Ok(AnyValue { value })
}

fn field<'m>(m: &'m Map<String, Value>, camel: &str, snake: &str) -> Option<&'m Value> {
    m.get(camel)
        .or_else(|| m.get(snake))
        .filter(|v| !v.is_null())
}

fn object<'v>(v: &'v Value, path: &str) -> Result<&'v Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        _ => err(path, "expected an object"),
    }
}

fn array<'m>(
    m: &'m Map<String, Value>,
    camel: &str,
    snake: &str,
    path: &str,
) -> Result<&'m [Value]> {
    match field(m, camel, snake) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => err(path, format!("{camel} must be an array")),
    }
}

fn string(m: &Map<String, Value>, camel: &str, snake: &str, path: &str) -> Result<String> {
    match field(m, camel, snake) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => err(path, format!("{camel} must be a string")),
    }
}

/// An integer written as a number or a decimal string.
fn int(m: &Map<String, Value>, camel: &str, snake: &str, path: &str) -> Result<i64> {
    match field(m, camel, snake) {
        None => Ok(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .map_or_else(|| err(path, format!("{camel} {n} is not an integer")), Ok),
        Some(Value::String(s)) => s.parse().map_or_else(
            |_| err(path, format!("{camel} {s:?} is not an integer")),
            Ok,
        ),
        Some(_) => err(path, format!("{camel} must be an integer")),
    }
}

fn uint(m: &Map<String, Value>, camel: &str, snake: &str, path: &str) -> Result<u64> {
    match field(m, camel, snake) {
        None => Ok(0),
        Some(Value::Number(n)) => n.as_u64().map_or_else(
            || err(path, format!("{camel} {n} is not an unsigned integer")),
            Ok,
        ),
        Some(Value::String(s)) => s.parse().map_or_else(
            |_| err(path, format!("{camel} {s:?} is not an unsigned integer")),
            Ok,
        ),
        Some(_) => err(path, format!("{camel} must be an unsigned integer")),
    }
}

fn hex_field(m: &Map<String, Value>, camel: &str, snake: &str, path: &str) -> Result<Vec<u8>> {
    let s = string(m, camel, snake, path)?;
    if s.len() % 2 != 0 {
        return err(path, format!("{camel} {s:?} is not hex"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).unwrap_or("x"), 16))
        .collect::<std::result::Result<Vec<u8>, _>>()
        .map_or_else(|_| err(path, format!("{camel} {s:?} is not hex")), Ok)
}

/// Standard or URL-safe base64, padded or not.
fn base64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::alphabet::{STANDARD, URL_SAFE};
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let lenient =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&STANDARD, lenient)
        .decode(s)
        .or_else(|_| GeneralPurpose::new(&URL_SAFE, lenient).decode(s))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specification_s_json_example_reads_into_the_messages() {
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[
            {"key":"service.name","value":{"stringValue":"checkout"}}]},
          "scopeLogs":[{"scope":{"name":"my.library","version":"1.0.0"},
            "logRecords":[{"timeUnixNano":"1544712660300000000","observedTimeUnixNano":1544712660300000001,
              "severityNumber":10,"severityText":"Information","traceId":"5b8efff798038103d269b633813fc60c",
              "spanId":"eee19b7ec3c1b174","body":{"stringValue":"Example log record"},
              "attributes":[{"key":"int.attribute","value":{"intValue":"10"}},
                {"key":"double.attribute","value":{"doubleValue":637.704}},
                {"key":"array.attribute","value":{"arrayValue":{"values":[{"stringValue":"many"},{"boolValue":true}]}}},
                {"key":"map.attribute","value":{"kvlistValue":{"values":[{"key":"some.map.key","value":{"stringValue":"some value"}}]}}},
                {"key":"bytes.attribute","value":{"bytesValue":"aGk="}}],
              "unknownField":"ignored"}]}]}]}"#;
        let req = logs_request(body).unwrap();
        let r = &req.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(r.time_unix_nano, 1_544_712_660_300_000_000);
        assert_eq!(r.observed_time_unix_nano, 1_544_712_660_300_000_001);
        assert_eq!(r.severity_number, 10);
        assert_eq!(
            super::super::common::hex(&r.trace_id),
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(r.span_id.len(), 8);
        assert_eq!(r.body.as_ref().unwrap().to_text(), "Example log record");
        let texts: Vec<String> = r
            .attributes
            .iter()
            .map(|a| a.value.as_ref().unwrap().to_text())
            .collect();
        assert_eq!(
            texts,
            [
                "10",
                "637.704",
                r#"["many",true]"#,
                r#"{"some.map.key":"some value"}"#,
                "6869"
            ]
        );
        assert_eq!(
            req.resource_logs[0].scope_logs[0]
                .scope
                .as_ref()
                .unwrap()
                .name,
            "my.library"
        );
    }

    #[test]
    fn malformed_json_is_refused_with_its_place() {
        for (body, expect) in [
            (&b"{"[..], "not JSON"),
            (br#"{"resourceLogs":{}}"#, "resourceLogs must be an array"),
            (
                br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"xyz0"}]}]}]}"#,
                "resourceLogs[0].scopeLogs[0].logRecords[0]: traceId",
            ),
            (
                br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"soon"}]}]}]}"#,
                "timeUnixNano \"soon\"",
            ),
        ] {
            let e = logs_request(body).unwrap_err().to_string();
            assert!(e.contains(expect), "{e}");
        }
    }
}
