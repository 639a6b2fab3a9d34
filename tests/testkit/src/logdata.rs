//! Deterministic application logs for the log benchmarks: what a small fleet's shippers send.
//!
//! Four kinds of stream, in the proportions of a web shop's cluster:
//!
//! | kind | share of streams | a line |
//! |---|---|---|
//! | [`Kind::Access`] | 3 in 10 | an nginx `combined` access line plus the request time |
//! | [`Kind::Json`] | 4 in 10 | a JSON application log: time, level, logger, message, request fields, trace id |
//! | [`Kind::Logfmt`] | 2 in 10 | a logfmt worker log: time, level, caller, message, job fields, trace id |
//! | [`Kind::Java`] | 1 in 10 | a Spring Boot style line; an error carries an 8 to 15 frame stack trace (one multi-line entry) |
//!
//! Every stream has the labels a Kubernetes shipper gives (`env`, `cluster`, `namespace`,
//! `service`, `pod`, `container`); `container` names the kind (`nginx`, `api`, `worker`,
//! `jvm`). Streams get lines in a skewed mix: half the lines are spread evenly over the
//! streams, half by a Zipf law (a few streams are much chattier than the rest), so every
//! stream is active and some are loud.
//!
//! Line `i` of `n` has the timestamp `start + i × span / n` plus jitter within its own slot,
//! so lines are in time order overall and per stream. Lines written while serving a request
//! (70% of JSON lines, 50% of logfmt, 60% of Java; no access line) print a trace id (32 hex
//! digits) shared by [`LogSpec::lines_per_trace`] consecutive lines, as the lines one request
//! leaves across services; the logfmt and Java streams also carry it as structured metadata
//! `trace_id` (what an OpenTelemetry shipper sends), the JSON streams only in the text (what a
//! file shipper sends). Levels: 85% info, 9% warn, 5% error, 1% debug. HTTP statuses: mostly
//! 200, with 2% 5xx. [`LogSpec::needles`] lines, at random places, carry a rare token that
//! appears nowhere else (`quota exceeded for tenant t-xxxxxxxxxx`).
//!
//! Every line is random access ([`LogData::line`] computes line `i` from the seed alone), so
//! several threads generate disjoint ranges of one dataset and agree byte for byte.

use std::fmt::Write as _;

use crate::dataset::{hash, mix};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSpec {
    pub seed: u64,
    pub streams: usize,
    /// Lines (entries: a stack trace is one entry of several text lines).
    pub lines: u64,
    /// Timestamp of line 0, in nanoseconds since the Unix epoch.
    pub start_ns: i64,
    /// Time the lines span, in nanoseconds.
    pub span_ns: i64,
    /// Consecutive lines sharing one trace id.
    pub lines_per_trace: u64,
    /// Lines carrying a rare token.
    pub needles: usize,
    /// Line `i` goes to stream `i mod streams` (every stream gets lines at once, for limit
    /// tests) rather than the skewed mix.
    pub round_robin: bool,
}

/// The kind of a stream: which application writes it and in what format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Access,
    Json,
    Logfmt,
    Java,
}

impl Kind {
    /// The `container` label of streams of this kind.
    pub fn container(self) -> &'static str {
        match self {
            Kind::Access => "nginx",
            Kind::Json => "api",
            Kind::Logfmt => "worker",
            Kind::Java => "jvm",
        }
    }
}

/// One stream: its labels (sorted by name), kind, and the path of its raw file.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    pub labels: Vec<(String, String)>,
    pub kind: Kind,
    /// `namespace/pod/container.log`, where a node keeps a container's log.
    pub path: String,
}

/// What a line is, besides its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineInfo {
    pub stream: usize,
    pub ts_ns: i64,
    /// The trace id of the request, as structured metadata (logfmt and Java streams).
    pub trace_metadata: Option<u64>,
    pub level: Level,
    /// The needle this line carries, as an index into [`LogData::needles`].
    pub needle: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    fn upper(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => " INFO",
            Level::Warn => " WARN",
            Level::Error => "ERROR",
        }
    }
}

/// A generated dataset: the streams and the way to any of its lines.
#[derive(Debug, Clone)]
pub struct LogData {
    spec: LogSpec,
    streams: Vec<Stream>,
    /// Cumulative Zipf weights of the streams, scaled to `u64`.
    zipf: Vec<u64>,
    /// Line indexes of the needles, sorted, with their index in `needles`.
    needle_lines: Vec<(u64, usize)>,
}

const SERVICES: &[&str] = &[
    "checkout",
    "cart",
    "catalog",
    "payments",
    "shipping",
    "users",
    "search",
    "reviews",
    "inventory",
    "pricing",
    "gateway",
    "auth",
    "notifications",
    "orders",
    "recommendations",
    "billing",
    "media",
    "ads",
    "loyalty",
    "support",
];
const NAMESPACES: &[&str] = &["shop", "platform", "payments", "data", "edge", "growth"];
const CLUSTERS: &[&str] = &["eu-west-1", "eu-central-1", "us-east-1"];
const LOGGERS: &[&str] = &[
    "http.server",
    "db.pool",
    "cache.redis",
    "queue.consumer",
    "auth.jwt",
    "orders.service",
    "payments.client",
    "search.index",
];
const ROUTES: &[&str] = &[
    "/api/v1/orders/",
    "/api/v1/users/",
    "/api/v1/products/",
    "/api/v1/cart/",
    "/api/v1/payments/",
    "/api/v2/search?q=item",
    "/api/v1/reviews/",
    "/api/v1/inventory/",
    "/static/js/app.",
    "/static/css/site.",
    "/healthz",
    "/metrics",
    "/api/v1/shipping/quote/",
    "/api/v1/recommendations/",
    "/api/v1/auth/token",
    "/api/v1/loyalty/points/",
];
const METHODS: &[&str] = &[
    "GET", "GET", "GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "kube-probe/1.31",
    "Go-http-client/1.1",
];
const INFO_MESSAGES: &[&str] = &[
    "request completed",
    "order placed",
    "cache lookup",
    "user signed in",
    "item added to cart",
    "price recalculated",
    "search served",
    "token refreshed",
    "message consumed",
    "connection acquired",
    "payment authorised",
    "shipment quoted",
];
const WARN_MESSAGES: &[&str] = &[
    "slow query",
    "retrying upstream call",
    "cache miss storm",
    "connection pool nearly exhausted",
    "deprecated API version used",
    "rate limit approaching",
];
const ERROR_MESSAGES: &[&str] = &[
    "upstream timed out",
    "payment declined by provider",
    "database deadlock detected",
    "failed to publish event",
    "invalid token signature",
    "inventory reservation failed",
];
const JOBS: &[&str] = &[
    "email-digest",
    "invoice-render",
    "stock-sync",
    "search-reindex",
    "image-resize",
    "cart-expiry",
    "fraud-score",
    "export-csv",
];
const THREADS: &[&str] = &[
    "http-nio-8080-exec-",
    "scheduling-",
    "kafka-consumer-",
    "task-",
];
const CLASSES: &[&str] = &[
    "c.e.shop.OrderService",
    "c.e.shop.PaymentClient",
    "c.e.shop.InventoryRepository",
    "c.e.shop.web.CheckoutController",
    "o.h.engine.jdbc.spi.SqlExceptionHelper",
    "c.e.shop.events.Publisher",
];
const EXCEPTIONS: &[&str] = &[
    "java.lang.IllegalStateException: order is not in state PENDING",
    "java.net.SocketTimeoutException: Read timed out",
    "org.springframework.dao.DataIntegrityViolationException: could not execute statement",
    "java.lang.NullPointerException: Cannot invoke \"Customer.getAddress()\" because \"customer\" is null",
];
const FRAMES: &[&str] = &[
    "com.example.shop.OrderService.place(OrderService.java:",
    "com.example.shop.PaymentClient.charge(PaymentClient.java:",
    "com.example.shop.web.CheckoutController.checkout(CheckoutController.java:",
    "org.springframework.transaction.interceptor.TransactionInterceptor.invoke(TransactionInterceptor.java:",
    "org.springframework.aop.framework.ReflectiveMethodInvocation.proceed(ReflectiveMethodInvocation.java:",
    "org.hibernate.engine.jdbc.internal.ResultSetReturnImpl.executeUpdate(ResultSetReturnImpl.java:",
    "jakarta.servlet.http.HttpServlet.service(HttpServlet.java:",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:",
    "java.base/java.lang.Thread.run(Thread.java:",
];

/// Draws of one line: each a hash of the seed, the line and a purpose.
struct Draws {
    key: u64,
    line: u64,
}

impl Draws {
    fn bits(&self, purpose: u64) -> u64 {
        hash(self.key, self.line, purpose)
    }
    fn below(&self, purpose: u64, n: u64) -> u64 {
        self.bits(purpose) % n.max(1)
    }
    fn pick<T: Copy>(&self, purpose: u64, items: &[T]) -> T {
        items[self.below(purpose, items.len() as u64) as usize]
    }
    fn percent(&self, purpose: u64) -> u64 {
        self.below(purpose, 100)
    }
}

impl LogData {
    /// The dataset `spec` describes.
    pub fn new(spec: LogSpec) -> LogData {
        assert!(spec.streams > 0, "at least one stream");
        let streams = (0..spec.streams)
            .map(|s| make_stream(spec.seed, s))
            .collect();
        let mut total = 0.0f64;
        let weights: Vec<f64> = (0..spec.streams)
            .map(|r| {
                total += 1.0 / (r as f64 + 1.0);
                total
            })
            .collect();
        let zipf = weights
            .iter()
            .map(|w| (w / total * u64::MAX as f64) as u64)
            .collect();
        let mut needle_lines: Vec<(u64, usize)> = (0..spec.needles)
            .map(|k| {
                (
                    hash(spec.seed, k as u64, 0x6e65_6564) % spec.lines.max(1),
                    k,
                )
            })
            .collect();
        needle_lines.sort_unstable();
        needle_lines.dedup_by_key(|(line, _)| *line);
        LogData {
            spec,
            streams,
            zipf,
            needle_lines,
        }
    }

    pub fn spec(&self) -> &LogSpec {
        &self.spec
    }

    pub fn streams(&self) -> &[Stream] {
        &self.streams
    }

    /// The rare tokens, each on exactly one line.
    pub fn needles(&self) -> Vec<String> {
        let mut tokens = vec![String::new(); self.spec.needles];
        for &(_, k) in &self.needle_lines {
            tokens[k] = needle_token(self.spec.seed, k);
        }
        tokens.retain(|t| !t.is_empty());
        tokens
    }

    /// The trace id of trace number `trace`, as 32 lowercase hex digits.
    pub fn trace_id(&self, trace: u64) -> String {
        let mut out = String::with_capacity(32);
        push_trace_id(&mut out, self.spec.seed, trace);
        out
    }

    /// The trace number of line `i` (every line has one; access lines do not print it).
    pub fn trace_of(&self, i: u64) -> u64 {
        i / self.spec.lines_per_trace.max(1)
    }

    /// The stream line `i` belongs to.
    pub fn stream_of(&self, i: u64) -> usize {
        if self.spec.round_robin {
            return (i % self.streams.len() as u64) as usize;
        }
        let bits = hash(self.spec.seed, i, 0x5712);
        if bits & 1 == 0 {
            ((bits >> 1) % self.streams.len() as u64) as usize
        } else {
            let target = mix(bits);
            self.zipf
                .partition_point(|&w| w < target)
                .min(self.streams.len() - 1)
        }
    }

    /// The timestamp of line `i`.
    pub fn ts_of(&self, i: u64) -> i64 {
        let n = self.spec.lines.max(1) as i128;
        let span = self.spec.span_ns as i128;
        let slot = (span / n).max(1) as u64;
        let base = (i as i128 * span / n) as i64;
        self.spec.start_ns + base + (hash(self.spec.seed, i, 0x7153) % slot) as i64
    }

    /// What line `i` says without its text: its stream, the stream's kind, the level,
    /// whether it was written serving a request (so it prints a trace id and, for JSON, the
    /// request's fields), and the HTTP status it prints (access lines, JSON lines of a
    /// request).
    fn facts(&self, i: u64) -> (usize, Kind, Level, bool, u32) {
        let stream = self.stream_of(i);
        let d = Draws {
            key: self.spec.seed,
            line: i,
        };
        let level = match d.percent(1) {
            0 => Level::Debug,
            1..=5 => Level::Error,
            6..=14 => Level::Warn,
            _ => Level::Info,
        };
        let kind = self.streams[stream].kind;
        // Lines written while serving a request carry its trace id; the rest (background
        // work, startup, health) have none.
        let traced = match kind {
            Kind::Access => false,
            Kind::Json => d.percent(12) < 70,
            Kind::Logfmt => d.percent(12) < 50,
            Kind::Java => d.percent(12) < 60,
        };
        let status = match (level, d.percent(3)) {
            (Level::Error, p) if p < 40 => [500, 502, 503, 504][(p % 4) as usize],
            (_, 0..=79) => 200,
            (_, 80..=85) => 201,
            (_, 86..=88) => 204,
            (_, 89..=91) => 304,
            (_, 92..=93) => 301,
            (_, 94..=95) => 400,
            (_, 96..=98) => 404,
            _ => 401,
        };
        (stream, kind, level, traced, status)
    }

    /// The `status` field of line `i` if it is a JSON line with one (written serving a
    /// request): what `| json | status >= 500` reads, without generating the text.
    pub fn json_status(&self, i: u64) -> Option<u32> {
        let (_, kind, _, traced, status) = self.facts(i);
        (kind == Kind::Json && traced).then_some(status)
    }

    /// Writes line `i`'s text into `text` (cleared first) and says what else it carries.
    pub fn line(&self, i: u64, text: &mut String) -> LineInfo {
        text.clear();
        let (stream, kind, level, traced, status) = self.facts(i);
        let ts_ns = self.ts_of(i);
        let d = Draws {
            key: self.spec.seed,
            line: i,
        };
        let needle = self
            .needle_lines
            .binary_search_by_key(&i, |&(line, _)| line)
            .ok()
            .map(|at| self.needle_lines[at].1);
        let trace = self.trace_of(i);
        let message = |text: &mut String| match needle {
            Some(k) => {
                text.push_str("quota exceeded for tenant ");
                text.push_str(&needle_token(self.spec.seed, k));
            }
            None => text.push_str(match level {
                Level::Error => d.pick(2, ERROR_MESSAGES),
                Level::Warn => d.pick(2, WARN_MESSAGES),
                _ => d.pick(2, INFO_MESSAGES),
            }),
        };
        match kind {
            Kind::Access => {
                let client = d.below(4, 5000);
                let _ = write!(
                    text,
                    "10.{}.{}.{} - - [",
                    client >> 8 & 0x1f,
                    client & 0xff,
                    1 + client % 250
                );
                push_clf_time(text, ts_ns);
                let _ = write!(text, "] \"{} ", d.pick(5, METHODS));
                push_route(text, &d);
                let _ = write!(
                    text,
                    " HTTP/1.1\" {status} {} \"-\" \"{}\" {}.{:03}",
                    200 + d.below(7, 30_000),
                    d.pick(8, AGENTS),
                    d.below(9, 20) / 19,
                    d.below(10, 1000)
                );
                if let Some(k) = needle {
                    let _ = write!(text, " tenant=\"{}\"", needle_token(self.spec.seed, k));
                }
            }
            Kind::Json => {
                text.push_str("{\"ts\":\"");
                push_rfc3339_ms(text, ts_ns);
                let _ = write!(
                    text,
                    "\",\"level\":\"{}\",\"logger\":\"{}\",\"msg\":\"",
                    level.as_str(),
                    d.pick(11, LOGGERS)
                );
                message(text);
                text.push('"');
                if traced {
                    let _ = write!(text, ",\"method\":\"{}\",\"route\":\"", d.pick(5, METHODS));
                    push_route(text, &d);
                    let _ = write!(
                        text,
                        "\",\"status\":{status},\"duration_ms\":{}.{:03},\"user_id\":{}",
                        d.below(13, 400) * d.below(14, 3) / 2,
                        d.below(15, 1000),
                        d.below(16, 200_000)
                    );
                    text.push_str(",\"trace_id\":\"");
                    push_trace_id(text, self.spec.seed, trace);
                    text.push('"');
                }
                text.push('}');
            }
            Kind::Logfmt => {
                text.push_str("ts=");
                push_rfc3339_ms(text, ts_ns);
                let _ = write!(
                    text,
                    " level={} caller={}.go:{} msg=\"",
                    level.as_str(),
                    d.pick(17, JOBS).replace('-', "_"),
                    20 + d.below(18, 400)
                );
                message(text);
                let _ = write!(
                    text,
                    "\" job={} id={} attempt={} took={}.{:03}ms",
                    d.pick(17, JOBS),
                    d.below(19, 10_000_000),
                    1 + d.below(20, 3) / 2,
                    d.below(21, 900),
                    d.below(22, 1000)
                );
                if traced {
                    text.push_str(" trace_id=");
                    push_trace_id(text, self.spec.seed, trace);
                }
            }
            Kind::Java => {
                push_java_time(text, ts_ns);
                let _ = write!(
                    text,
                    " {} 1 --- [{}{}] {:<40} : ",
                    level.upper(),
                    if traced {
                        THREADS[0]
                    } else {
                        d.pick(23, &THREADS[1..])
                    },
                    1 + d.below(24, 12),
                    d.pick(25, CLASSES)
                );
                message(text);
                let _ = write!(
                    text,
                    " order={} customer={}",
                    d.below(26, 5_000_000),
                    d.below(27, 300_000)
                );
                if traced {
                    text.push_str(" [trace=");
                    push_trace_id(text, self.spec.seed, trace);
                    text.push(']');
                }
                if level == Level::Error {
                    let _ = write!(text, "\n{}", d.pick(28, EXCEPTIONS));
                    for f in 0..8 + d.below(29, 8) {
                        let _ = write!(
                            text,
                            "\n\tat {}{})",
                            FRAMES[((d.below(30, 4) + f) as usize) % FRAMES.len()],
                            40 + hash(self.spec.seed, f, 0xf4a3) % 600
                        );
                    }
                }
            }
        }
        LineInfo {
            stream,
            ts_ns,
            trace_metadata: (traced && matches!(kind, Kind::Logfmt | Kind::Java)).then_some(trace),
            level,
            needle,
        }
    }
}

fn make_stream(seed: u64, s: usize) -> Stream {
    let kind = match s % 10 {
        0..=2 => Kind::Access,
        3..=6 => Kind::Json,
        7..=8 => Kind::Logfmt,
        _ => Kind::Java,
    };
    let service = SERVICES[(s / 10) % SERVICES.len()];
    let replica = s / (10 * SERVICES.len());
    let service = if replica < 4 {
        service.to_owned()
    } else {
        format!("{service}-{}", replica / 4)
    };
    let namespace = NAMESPACES[(s / 10) % NAMESPACES.len()];
    let cluster = CLUSTERS[(s / 10 / SERVICES.len()) % CLUSTERS.len()];
    let h = hash(seed, s as u64, 0x90d);
    let pod = format!(
        "{service}-{:08x}-{:05x}",
        h >> 32 & 0xffff_ffff,
        h & 0xf_ffff
    );
    let container = kind.container();
    let mut labels = vec![
        ("cluster".to_owned(), cluster.to_owned()),
        ("container".to_owned(), container.to_owned()),
        ("env".to_owned(), "prod".to_owned()),
        ("namespace".to_owned(), namespace.to_owned()),
        ("pod".to_owned(), pod.clone()),
        ("service".to_owned(), service),
    ];
    labels.sort();
    Stream {
        labels,
        kind,
        path: format!("{namespace}/{pod}/{container}.log"),
    }
}

fn needle_token(seed: u64, k: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bits = hash(seed, k as u64, 0x7e57);
    let mut out = String::from("t-");
    for _ in 0..10 {
        out.push(ALPHABET[(bits % 32) as usize] as char);
        bits /= 32;
    }
    out
}

fn push_trace_id(out: &mut String, seed: u64, trace: u64) {
    let _ = write!(
        out,
        "{:016x}{:016x}",
        hash(seed, trace, 0x7ace),
        hash(seed, trace, 0x7acf)
    );
}

fn push_route(out: &mut String, d: &Draws) {
    let route = d.pick(6, ROUTES);
    out.push_str(route);
    if route.ends_with('/') {
        let _ = write!(out, "{}", d.below(31, 100_000));
    } else if route.ends_with('.') {
        let _ = write!(out, "{:08x}.js", d.below(31, 16) * 0x1f3a_9b2c);
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day, hour, minute, second, millisecond) of a time in nanoseconds.
fn fields(ts_ns: i64) -> (i64, u32, u32, i64, i64, i64, i64) {
    let ms = ts_ns.div_euclid(1_000_000);
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    (
        y,
        mo,
        d,
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        ms.rem_euclid(1000),
    )
}

fn push_rfc3339_ms(out: &mut String, ts_ns: i64) {
    let (y, mo, d, h, mi, s, ms) = fields(ts_ns);
    let _ = write!(out, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z");
}

fn push_java_time(out: &mut String, ts_ns: i64) {
    let (y, mo, d, h, mi, s, ms) = fields(ts_ns);
    let _ = write!(out, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{ms:03}");
}

fn push_clf_time(out: &mut String, ts_ns: i64) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, _) = fields(ts_ns);
    let _ = write!(
        out,
        "{d:02}/{}/{y:04}:{h:02}:{mi:02}:{s:02} +0000",
        MONTHS[mo as usize - 1]
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LogSpec {
        LogSpec {
            seed: 7,
            streams: 200,
            lines: 50_000,
            start_ns: 1_765_000_000_000_000_000,
            span_ns: 3_600_000_000_000,
            lines_per_trace: 8,
            needles: 5,
            round_robin: false,
        }
    }

    #[test]
    fn lines_are_random_access_and_in_time_order() {
        let data = LogData::new(spec());
        let mut a = String::new();
        let mut b = String::new();
        let mut prev = i64::MIN;
        for i in 0..50_000 {
            let info = data.line(i, &mut a);
            assert!(info.ts_ns >= prev, "line {i} goes back in time");
            prev = info.ts_ns;
            assert!(!a.is_empty());
        }
        let again = LogData::new(spec());
        assert_eq!(data.line(31_337, &mut a), again.line(31_337, &mut b));
        assert_eq!(a, b, "the same seed gives the same line");
    }

    #[test]
    fn every_needle_is_on_exactly_one_line_and_json_lines_parse() {
        let data = LogData::new(spec());
        let needles = data.needles();
        assert_eq!(needles.len(), 5);
        let mut found = vec![0; needles.len()];
        let mut text = String::new();
        let mut kinds = [0u64; 4];
        for i in 0..50_000 {
            let info = data.line(i, &mut text);
            for (k, n) in needles.iter().enumerate() {
                if text.contains(n.as_str()) {
                    found[k] += 1;
                    assert!(info.needle.is_some());
                }
            }
            let kind = data.streams()[info.stream].kind;
            kinds[kind as usize] += 1;
            if kind == Kind::Json {
                let printed = text
                    .split("\"status\":")
                    .nth(1)
                    .and_then(|rest| rest.split(',').next())
                    .map(|v| v.parse::<u32>().unwrap());
                assert_eq!(data.json_status(i), printed, "{text}");
                assert!(
                    text.starts_with("{\"ts\":\"20") && text.ends_with("\"}"),
                    "{text}"
                );
                assert_eq!(text.matches('"').count() % 2, 0, "{text}");
            }
        }
        assert_eq!(found, vec![1; 5]);
        assert!(
            kinds.iter().all(|&k| k > 1000),
            "every kind has lines: {kinds:?}"
        );
    }

    #[test]
    fn dates_are_civil() {
        let mut s = String::new();
        push_rfc3339_ms(&mut s, 1_765_109_045_123_000_000);
        assert_eq!(s, "2025-12-07T12:04:05.123Z");
        s.clear();
        push_clf_time(&mut s, 951_782_400_000_000_000);
        assert_eq!(s, "29/Feb/2000:00:00:00 +0000");
    }
}
