//! Go's `fmt.Sprintf` over template values: the verbs `printf` in a template takes (`%v %s %d
//! %f %e %g %q %x %t %c %o %b %%`), with flags, width and precision, and Go's texts for a
//! mismatched or missing argument.

use crate::format::{fmt_e, fmt_f, fmt_g};
use crate::value::Value;

/// One `printf` directive's flags, width and precision.
#[derive(Debug, Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

impl Spec {
    fn pad(&self, s: String, numeric: bool) -> String {
        let Some(w) = self.width else { return s };
        let len = s.chars().count();
        if len >= w {
            return s;
        }
        let fill = w - len;
        if self.minus {
            format!("{s}{}", " ".repeat(fill))
        } else if self.zero && numeric {
            let (sign, rest) = match s.chars().next() {
                Some(c @ ('-' | '+' | ' ')) => (c.to_string(), s[1..].to_owned()),
                _ => (String::new(), s),
            };
            format!("{sign}{}{rest}", "0".repeat(fill))
        } else {
            format!("{}{s}", " ".repeat(fill))
        }
    }

    fn signed(&self, s: String) -> String {
        if s.starts_with('-') {
            s
        } else if self.plus {
            format!("+{s}")
        } else if self.space {
            format!(" {s}")
        } else {
            s
        }
    }
}

/// Go's `fmt.Sprintf` over template values.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next_arg = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        let number = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0) * 10 + d as usize);
                chars.next();
            }
            n
        };
        spec.width = number(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(number(&mut chars).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next_arg) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next_arg += 1;
        out.push_str(&directive(verb, spec, arg));
    }
    if next_arg < args.len() {
        let extra: Vec<String> = args[next_arg..]
            .iter()
            .map(|a| format!("{}={}", a.go_type(), a))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn bad(verb: char, arg: &Value) -> String {
    format!("%!{verb}({}={arg})", arg.go_type())
}

fn directive(verb: char, spec: Spec, arg: &Value) -> String {
    match (verb, arg) {
        ('v', _) | ('s', Value::Str(_)) => {
            let mut s = arg.to_string();
            if let (Some(p), Value::Str(_)) = (spec.prec, arg) {
                s = s.chars().take(p).collect();
            }
            match arg {
                Value::Float(v) if verb == 'v' => {
                    spec.pad(spec.signed(fmt_g(*v, spec.prec, false, spec.sharp)), true)
                }
                Value::Int(_) => spec.pad(spec.signed(s), true),
                _ => spec.pad(s, false),
            }
        }
        ('s', Value::Float(_) | Value::Int(_) | Value::Bool(_)) => bad(verb, arg),
        ('s', _) => spec.pad(arg.to_string(), false),
        ('q', Value::Str(s)) => spec.pad(format!("{s:?}"), false),
        ('t', Value::Bool(b)) => spec.pad(b.to_string(), false),
        ('d', Value::Int(n)) => spec.pad(spec.signed(n.to_string()), true),
        ('x' | 'X', Value::Int(n)) => {
            let s = if verb == 'x' {
                format!("{:x}", n.unsigned_abs())
            } else {
                format!("{:X}", n.unsigned_abs())
            };
            let s = if spec.sharp { format!("0{verb}{s}") } else { s };
            let s = if *n < 0 { format!("-{s}") } else { s };
            spec.pad(spec.signed(s), true)
        }
        ('x' | 'X', Value::Str(s)) => {
            let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            spec.pad(if verb == 'X' { hex.to_uppercase() } else { hex }, false)
        }
        ('o', Value::Int(n)) => spec.pad(spec.signed(format!("{n:o}")), true),
        ('b', Value::Int(n)) => spec.pad(spec.signed(format!("{n:b}")), true),
        ('c', Value::Int(n)) => char::from_u32(*n as u32)
            .map_or_else(|| bad(verb, arg), |c| spec.pad(c.to_string(), false)),
        ('e' | 'E' | 'f' | 'F' | 'g' | 'G', Value::Float(v)) => {
            let s = match verb {
                'e' | 'E' => fmt_e(*v, spec.prec.unwrap_or(6), verb == 'E'),
                'f' | 'F' => fmt_f(*v, spec.prec.unwrap_or(6)),
                _ => fmt_g(*v, spec.prec, verb == 'G', spec.sharp),
            };
            spec.pad(spec.signed(s), v.is_finite())
        }
        _ => bad(verb, arg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printf_verbs_flags_and_mismatches() {
        let args = [
            Value::Float(1.23456),
            Value::Str("x".into()),
            Value::Int(42),
        ];
        assert_eq!(sprintf("%.2f|%s|%d", &args), "1.23|x|42");
        assert_eq!(sprintf("%5.1f|%-3s|%04d", &args), "  1.2|x  |0042");
        assert_eq!(sprintf("%v %v %v", &args), "1.23456 x 42");
        assert_eq!(sprintf("%d", &args[..1]), "%!d(float64=1.23456)");
        assert_eq!(sprintf("%s %s", &args[1..2]), "x %!s(MISSING)");
        assert_eq!(sprintf("100%%", &[]), "100%");
        assert_eq!(sprintf("%q", &args[1..2]), "\"x\"");
        assert_eq!(sprintf("%x", &args[2..3]), "2a");
    }
}
