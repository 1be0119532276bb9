//! Physical dimensions and units, as in Brian2: seven SI base dimensions, named
//! units with every SI prefix, and the algebra the dimension checker needs.

use std::fmt;
use std::ops::{Div, Mul};

/// Exponents are stored in twelfths, so `sqrt` (halves), cube roots and their
/// products stay exact integers.
const DENOM: i32 = 12;

/// The names of the seven base dimensions, in storage order.
pub const BASE_SYMBOLS: [&str; 7] = ["m", "kg", "s", "A", "K", "mol", "cd"];

/// A physical dimension: exponents of metre, kilogram, second, amp, kelvin, mole, candela.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Dimension([i32; 7]);

impl Dimension {
    /// Dimensionless.
    pub const ONE: Dimension = Dimension([0; 7]);

    /// A dimension from integer exponents (m, kg, s, A, K, mol, cd).
    pub const fn from_exponents(exponents: [i32; 7]) -> Dimension {
        let mut scaled = [0; 7];
        let mut i = 0;
        while i < 7 {
            scaled[i] = exponents[i] * DENOM;
            i += 1;
        }
        Dimension(scaled)
    }

    /// Time (second).
    pub const TIME: Dimension = Dimension::from_exponents([0, 0, 1, 0, 0, 0, 0]);
    /// Voltage (volt).
    pub const VOLT: Dimension = Dimension::from_exponents([2, 1, -3, -1, 0, 0, 0]);

    /// Whether this is dimensionless.
    pub fn is_dimensionless(self) -> bool {
        self == Dimension::ONE
    }

    /// The dimension raised to `power`, if every exponent stays a multiple of 1/12.
    pub fn pow(self, power: f64) -> Option<Dimension> {
        let mut out = [0; 7];
        for (o, &e) in out.iter_mut().zip(&self.0) {
            let value = f64::from(e) * power;
            let rounded = value.round();
            if (value - rounded).abs() > 1e-9 || rounded.abs() > 1e6 {
                return None;
            }
            // In range by the check above.
            *o = rounded as i32;
        }
        Some(Dimension(out))
    }

    /// The square root.
    pub fn sqrt(self) -> Option<Dimension> {
        self.pow(0.5)
    }

    /// The exponent of base dimension `i` as a reduced fraction (numerator, denominator).
    fn exponent(self, i: usize) -> (i32, i32) {
        let (n, d) = (self.0[i], DENOM);
        let g = gcd(n.unsigned_abs(), d.unsigned_abs()).max(1) as i32;
        (n / g, d / g)
    }
}

impl Mul for Dimension {
    type Output = Dimension;

    /// The product of two dimensions.
    fn mul(self, other: Dimension) -> Dimension {
        Dimension(std::array::from_fn(|i| self.0[i] + other.0[i]))
    }
}

impl Div for Dimension {
    type Output = Dimension;

    /// The quotient of two dimensions.
    fn div(self, other: Dimension) -> Dimension {
        Dimension(std::array::from_fn(|i| self.0[i] - other.0[i]))
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Named dimensions used when printing, most familiar first.
const NAMED_DIMENSIONS: &[(&str, [i32; 7])] = &[
    ("volt", [2, 1, -3, -1, 0, 0, 0]),
    ("amp", [0, 0, 0, 1, 0, 0, 0]),
    ("second", [0, 0, 1, 0, 0, 0, 0]),
    ("siemens", [-2, -1, 3, 2, 0, 0, 0]),
    ("farad", [-2, -1, 4, 2, 0, 0, 0]),
    ("ohm", [2, 1, -3, -2, 0, 0, 0]),
    ("hertz", [0, 0, -1, 0, 0, 0, 0]),
    ("metre", [1, 0, 0, 0, 0, 0, 0]),
    ("kilogram", [0, 1, 0, 0, 0, 0, 0]),
    ("coulomb", [0, 0, 1, 1, 0, 0, 0]),
    ("watt", [2, 1, -3, 0, 0, 0, 0]),
    ("joule", [2, 1, -2, 0, 0, 0, 0]),
    ("mole", [0, 0, 0, 0, 0, 1, 0]),
    ("kelvin", [0, 0, 0, 0, 1, 0, 0]),
    ("molar", [-3, 0, 0, 0, 0, 1, 0]),
];

fn named(dim: Dimension) -> Option<&'static str> {
    NAMED_DIMENSIONS.iter().find(|(_, e)| Dimension::from_exponents(*e) == dim).map(|(n, _)| *n)
}

impl fmt::Display for Dimension {
    /// `1`, `volt`, `volt/second`, `siemens/metre**2`, or base units: `m**2*kg/(s**3*A)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_dimensionless() {
            return f.write_str("1");
        }
        if let Some(name) = named(*self) {
            return f.write_str(name);
        }
        // A named unit over or times a simple one reads better than base units.
        let simple = [
            (Dimension::TIME, "second"),
            (Dimension::TIME.pow(0.5).unwrap_or_default(), "second**0.5"),
            (Dimension::from_exponents([2, 0, 0, 0, 0, 0, 0]), "metre**2"),
            (Dimension::from_exponents([3, 0, 0, 0, 0, 0, 0]), "metre**3"),
            (Dimension::VOLT, "volt"),
        ];
        if let Some((_, name)) = simple.iter().find(|(d, _)| Dimension::ONE.div(*d) == *self) {
            return write!(f, "1/{name}");
        }
        for (name, exps) in NAMED_DIMENSIONS {
            let base = Dimension::from_exponents(*exps);
            for (other, other_name) in simple {
                if base.div(other) == *self && *name != other_name {
                    return write!(f, "{name}/{other_name}");
                }
                if base.mul(other) == *self && *name != other_name {
                    return write!(f, "{name}*{other_name}");
                }
            }
        }
        if let Some(inverse) = named(Dimension::ONE.div(*self)) {
            return write!(f, "1/{inverse}");
        }
        let term = |i: usize, negate: bool| {
            let (mut n, d) = self.exponent(i);
            if negate {
                n = -n;
            }
            match (n, d) {
                (1, 1) => BASE_SYMBOLS[i].to_string(),
                (n, 1) => format!("{}**{n}", BASE_SYMBOLS[i]),
                (n, d) => format!("{}**({n}/{d})", BASE_SYMBOLS[i]),
            }
        };
        let num: Vec<String> = (0..7).filter(|&i| self.0[i] > 0).map(|i| term(i, false)).collect();
        let den: Vec<String> = (0..7).filter(|&i| self.0[i] < 0).map(|i| term(i, true)).collect();
        let num = if num.is_empty() { "1".to_string() } else { num.join("*") };
        match den.len() {
            0 => f.write_str(&num),
            1 => write!(f, "{num}/{}", den[0]),
            _ => write!(f, "{num}/({})", den.join("*")),
        }
    }
}

impl fmt::Debug for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dimension({self})")
    }
}

/// A unit: a scale to SI base units and a dimension (`mV` is 0.001 volt).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Unit {
    /// The value of one of this unit in SI base units.
    pub scale: f64,
    /// Its dimension.
    pub dim: Dimension,
}

/// Named units without prefixes: (names, scale, exponents of m, kg, s, A, K, mol, cd).
const UNITS: &[(&[&str], f64, [i32; 7])] = &[
    (&["metre", "meter", "m"], 1.0, [1, 0, 0, 0, 0, 0, 0]),
    (&["gram", "gramme", "g"], 1e-3, [0, 1, 0, 0, 0, 0, 0]),
    (&["second", "s"], 1.0, [0, 0, 1, 0, 0, 0, 0]),
    (&["amp", "ampere", "A"], 1.0, [0, 0, 0, 1, 0, 0, 0]),
    (&["kelvin", "K"], 1.0, [0, 0, 0, 0, 1, 0, 0]),
    (&["mole", "mol"], 1.0, [0, 0, 0, 0, 0, 1, 0]),
    (&["candela", "cd"], 1.0, [0, 0, 0, 0, 0, 0, 1]),
    (&["volt", "V"], 1.0, [2, 1, -3, -1, 0, 0, 0]),
    (&["ohm", "Ohm"], 1.0, [2, 1, -3, -2, 0, 0, 0]),
    (&["siemens", "S"], 1.0, [-2, -1, 3, 2, 0, 0, 0]),
    (&["farad", "F"], 1.0, [-2, -1, 4, 2, 0, 0, 0]),
    (&["hertz", "Hz"], 1.0, [0, 0, -1, 0, 0, 0, 0]),
    (&["coulomb", "C"], 1.0, [0, 0, 1, 1, 0, 0, 0]),
    (&["watt", "W"], 1.0, [2, 1, -3, 0, 0, 0, 0]),
    (&["joule", "J"], 1.0, [2, 1, -2, 0, 0, 0, 0]),
    // No short `N`: that is the size of a group.
    (&["newton"], 1.0, [1, 1, -2, 0, 0, 0, 0]),
    (&["pascal", "Pa"], 1.0, [-1, 1, -2, 0, 0, 0, 0]),
    (&["henry", "H"], 1.0, [2, 1, -2, -2, 0, 0, 0]),
    (&["tesla", "T"], 1.0, [0, 1, -2, -1, 0, 0, 0]),
    (&["weber", "Wb"], 1.0, [2, 1, -2, -1, 0, 0, 0]),
    (&["litre", "liter", "l", "L"], 1e-3, [3, 0, 0, 0, 0, 0, 0]),
    (&["molar", "M"], 1e3, [-3, 0, 0, 0, 0, 1, 0]),
    (&["radian", "rad"], 1.0, [0, 0, 0, 0, 0, 0, 0]),
];

/// SI prefixes, longest first so that `da` wins over `d`.
const PREFIXES: &[(&str, f64)] = &[
    ("da", 1e1),
    ("y", 1e-24),
    ("z", 1e-21),
    ("a", 1e-18),
    ("f", 1e-15),
    ("p", 1e-12),
    ("n", 1e-9),
    ("u", 1e-6),
    ("m", 1e-3),
    ("c", 1e-2),
    ("d", 1e-1),
    ("h", 1e2),
    ("k", 1e3),
    ("M", 1e6),
    ("G", 1e9),
    ("T", 1e12),
    ("P", 1e15),
    ("E", 1e18),
    ("Z", 1e21),
    ("Y", 1e24),
];

fn unprefixed(name: &str) -> Option<Unit> {
    UNITS
        .iter()
        .find(|(names, _, _)| names.contains(&name))
        .map(|(_, scale, exps)| Unit { scale: *scale, dim: Dimension::from_exponents(*exps) })
}

/// Looks up a unit name: `volt`, `mV`, `msecond`, `kHz`, `MOhm`, `cm2`, `um3`.
pub fn lookup(name: &str) -> Option<Unit> {
    // `cm2`, `um3`: squared and cubed units, as Brian2 defines them.
    if let Some(base) = name.strip_suffix('2').or_else(|| name.strip_suffix('3')) {
        let power = if name.ends_with('2') { 2 } else { 3 };
        let unit = lookup_plain(base)?;
        return Some(Unit { scale: unit.scale.powi(power), dim: unit.dim.pow(f64::from(power))? });
    }
    lookup_plain(name)
}

fn lookup_plain(name: &str) -> Option<Unit> {
    if let Some(unit) = unprefixed(name) {
        return Some(unit);
    }
    PREFIXES.iter().find_map(|(prefix, factor)| {
        let rest = name.strip_prefix(prefix)?;
        let unit = unprefixed(rest)?;
        // Brian2 has no prefixed radian; `kilogram` is `k` + `gram`.
        (rest != "rad" && rest != "radian").then(|| Unit { scale: factor * unit.scale, dim: unit.dim })
    })
}

/// The symbol of the named unit of dimension `dim` with no scale (`V`, `S`, `Hz`, `s`, `m`), if
/// there is one: for labels such as `v (mV)`. Dimensionless has none.
pub fn symbol(dim: Dimension) -> Option<&'static str> {
    if dim.is_dimensionless() {
        return None;
    }
    UNITS
        .iter()
        .find(|(_, scale, exps)| *scale == 1.0 && Dimension::from_exponents(*exps) == dim)
        .and_then(|(names, _, _)| names.last().copied())
}

/// Common unit names, for "did you mean" suggestions.
pub fn common_names() -> impl Iterator<Item = String> {
    let plain = UNITS.iter().flat_map(|(names, _, _)| names.iter().map(|n| n.to_string()));
    let prefixed = ["m", "u", "n", "p", "k", "M"].into_iter().flat_map(|p| {
        ["V", "s", "A", "S", "F", "Hz", "ohm", "Ohm", "m", "volt", "second", "amp", "siemens", "farad", "metre"]
            .map(move |u| format!("{p}{u}"))
    });
    plain.chain(prefixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_units_scale() {
        let mv = lookup("mV").expect("mV");
        assert_eq!(mv.scale, 1e-3);
        assert_eq!(mv.dim, Dimension::VOLT);
        assert_eq!(lookup("ms").map(|u| u.scale), Some(1e-3));
        assert_eq!(lookup("kHz").map(|u| (u.scale, u.dim)), Some((1e3, Dimension::ONE.div(Dimension::TIME))));
        assert_eq!(lookup("MOhm").map(|u| u.scale), Some(1e6));
        assert_eq!(lookup("uF").map(|u| u.scale), Some(1e-6));
        assert_eq!(lookup("dam").map(|u| u.scale), Some(10.0));
        assert_eq!(lookup("kg").map(|u| u.scale), Some(1.0));
        assert_eq!(lookup("mM").map(|u| u.scale), Some(1.0));
        assert_eq!(lookup("msecond").map(|u| u.dim), Some(Dimension::TIME));
        assert_eq!(lookup("cm2").map(|u| u.scale), Some(1e-4));
        assert_eq!(lookup("um3").map(|u| u.dim), Some(Dimension::from_exponents([3, 0, 0, 0, 0, 0, 0])));
        assert_eq!(lookup("x"), None);
        assert_eq!(lookup("mrad"), None);
        assert_eq!(lookup("2"), None);
    }

    #[test]
    fn algebra() {
        let v = Dimension::VOLT;
        let s = Dimension::TIME;
        assert_eq!(v.mul(s).div(s), v);
        assert_eq!(v.div(v), Dimension::ONE);
        assert_eq!(s.sqrt().and_then(|h| h.pow(2.0)), Some(s));
        assert_eq!(s.pow(1.0 / 3.0).and_then(|c| c.pow(3.0)), Some(s));
        assert_eq!(s.pow(0.1), None);
        // ohm = volt / amp, siemens = 1/ohm, farad * ohm = second
        let amp = Dimension::from_exponents([0, 0, 0, 1, 0, 0, 0]);
        let ohm = lookup("ohm").map(|u| u.dim);
        assert_eq!(ohm, Some(v.div(amp)));
        assert_eq!(lookup("siemens").map(|u| u.dim), ohm.map(|o| Dimension::ONE.div(o)));
        assert_eq!(lookup("farad").and_then(|f| ohm.map(|o| f.dim.mul(o))), Some(s));
    }

    #[test]
    fn symbols_of_named_dimensions() {
        assert_eq!(symbol(Dimension::VOLT), Some("V"));
        assert_eq!(symbol(Dimension::TIME), Some("s"));
        assert_eq!(symbol(lookup("nS").expect("nS").dim), Some("S"));
        assert_eq!(symbol(lookup("kHz").expect("kHz").dim), Some("Hz"));
        // Dimensionless and compound dimensions have no symbol of their own.
        assert_eq!(symbol(Dimension::ONE), None);
        assert_eq!(symbol(Dimension::VOLT.div(Dimension::TIME)), None);
    }

    #[test]
    fn display_is_readable() {
        let s = Dimension::TIME;
        assert_eq!(Dimension::ONE.to_string(), "1");
        assert_eq!(Dimension::VOLT.to_string(), "volt");
        assert_eq!(Dimension::VOLT.div(s).to_string(), "volt/second");
        assert_eq!(Dimension::ONE.div(s.sqrt().unwrap_or_default()).to_string(), "1/second**0.5");
        let siemens = lookup("siemens").map(|u| u.dim).unwrap_or_default();
        let m2 = Dimension::from_exponents([2, 0, 0, 0, 0, 0, 0]);
        assert_eq!(siemens.div(m2).to_string(), "siemens/metre**2");
        assert_eq!(Dimension::from_exponents([1, 0, 3, 0, 0, 0, 0]).to_string(), "m*s**3");
        assert_eq!(Dimension::from_exponents([1, 2, -3, 0, 0, 0, 1]).to_string(), "m*kg**2*cd/s**3");
    }
}
