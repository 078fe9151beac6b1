#include "qvmail/expression.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

#include "qvmail/error.hpp"

namespace qv {

namespace {

using Op = NumericExpression::Op;
using Value = NumericExpression::Value;
using Status = NumericExpression::Status;

constexpr std::size_t kMaxLength = 1024;  // a vfilter keyword holds 64 characters
constexpr int kMaxDepth = 64;             // nesting of parentheses and unary operators

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// Reads an unsigned number at the start of `s`: decimal digits with an optional fraction, or 0x hex.
// Returns the characters used (0: not a number).
std::size_t scan_unsigned(std::string_view s, Value& v) {
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        std::uint64_t u = 0;
        auto r = std::from_chars(s.data() + 2, s.data() + s.size(), u, 16);
        if (r.ec == std::errc::result_out_of_range || (r.ec == std::errc() && u > INT64_MAX)) return 0;
        if (r.ec != std::errc()) return 0;
        v = Value{true, static_cast<std::int64_t>(u), 0};
        return static_cast<std::size_t>(r.ptr - s.data());
    }
    std::size_t n = 0;
    while (n < s.size() && is_digit(s[n])) ++n;
    bool frac = n < s.size() && s[n] == '.';
    std::size_t m = n;
    if (frac) {
        ++m;
        while (m < s.size() && is_digit(s[m])) ++m;
        if (m == n + 1 && n == 0) return 0;  // "." alone
    }
    if (m == 0) return 0;
    if (!frac) {
        std::int64_t i = 0;
        auto r = std::from_chars(s.data(), s.data() + n, i);
        if (r.ec == std::errc()) {
            v = Value{true, i, 0};
            return n;
        }
        // too large for 64 bits: a decimal
    }
    double d = 0;
    auto r = std::from_chars(s.data(), s.data() + m, d);
    if (r.ec != std::errc() || !std::isfinite(d)) return 0;
    v = Value{false, 0, d};
    return m;
}

double as_double(const Value& v) {
    return v.is_int ? static_cast<double>(v.i) : v.d;
}

NumericExpression::Result ok(Value v) {
    if (!v.is_int && !std::isfinite(v.d)) return {Status::overflow, {}};
    return {Status::ok, v};
}
NumericExpression::Result ok_int(std::int64_t i) {
    return {Status::ok, Value{true, i, 0}};
}
NumericExpression::Result fail(Status s) {
    return {s, {}};
}

bool truth(const Value& v) {
    return v.is_int ? v.i != 0 : v.d != 0;
}

}  // namespace

std::string NumericExpression::Value::str() const {
    if (is_int) return std::to_string(i);
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, d);
    return std::string(buf, r.ptr);
}

bool NumericExpression::parse_number(std::string_view t, Value& out) noexcept {
    while (!t.empty() && is_space(t.front())) t.remove_prefix(1);
    while (!t.empty() && is_space(t.back())) t.remove_suffix(1);
    bool neg = false;
    if (!t.empty() && (t[0] == '+' || t[0] == '-')) {
        neg = t[0] == '-';
        t.remove_prefix(1);
    }
    if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) return false;  // hex only in expressions
    Value v;
    std::size_t n = scan_unsigned(t, v);
    if (n == 0 || n != t.size()) return false;
    if (neg) {
        if (v.is_int)
            v.i = -v.i;  // v.i >= 0, so this cannot overflow
        else
            v.d = -v.d;
    }
    out = v;
    return true;
}

// Precedence climbing over the token stream; the tree goes into the expression's node list.
class ExpressionParser {
public:
    ExpressionParser(NumericExpression& e, std::string_view text) : e_(e), s_(text) {}

    void parse() {
        if (s_.size() > kMaxLength)
            throw Error(Exit::dataerr, "the expression is longer than " + std::to_string(kMaxLength) + " characters");
        skip();
        if (pos_ == s_.size()) throw Error(Exit::dataerr, "the expression is empty");
        e_.root_ = binary(0, 0);
        skip();
        if (pos_ == s_.size()) return;
        if (s_[pos_] == '=') error("unexpected '=' (equality is ==)");
        error("unexpected '" + printable(s_.substr(pos_, 1)) + "'");
    }

private:
    struct BinOp {
        std::string_view token;
        Op op;
        int level;
    };
    // Longer tokens first, so that "<<" is not read as "<".
    static constexpr BinOp kOps[] = {
        {"||", Op::lor, 1}, {"&&", Op::land, 2}, {"<<", Op::shl, 8}, {">>", Op::shr, 8}, {"<=", Op::le, 7},
        {">=", Op::ge, 7},  {"==", Op::eq, 6},   {"!=", Op::ne, 6},  {"|", Op::bor, 3},  {"^", Op::bxor, 4},
        {"&", Op::band, 5}, {"<", Op::lt, 7},    {">", Op::gt, 7},   {"+", Op::add, 9},  {"-", Op::sub, 9},
        {"*", Op::mul, 10}, {"/", Op::div, 10},  {"%", Op::mod, 10},
    };

    [[noreturn]] void error(const std::string& what) const {
        throw Error(Exit::dataerr,
                    what + " at position " + std::to_string(pos_ + 1) + " of the expression '" + printable(s_) + "'");
    }

    void skip() {
        while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
    }

    std::int32_t add(Op op, std::int32_t a = -1, std::int32_t b = -1, Value c = {}) {
        e_.nodes_.push_back(NumericExpression::Node{op, a, b, c});
        return static_cast<std::int32_t>(e_.nodes_.size() - 1);
    }

    // The binary operator at pos_ (not consumed), if any of level >= min_level. "**" is not one of them,
    // and "%p" is an operand, not "%".
    const BinOp* peek_binary(int min_level) {
        skip();
        std::string_view rest = s_.substr(pos_);
        if (rest.starts_with("**") || rest.starts_with("%p")) return nullptr;
        for (const BinOp& b : kOps)
            if (rest.starts_with(b.token)) return b.level >= min_level ? &b : nullptr;
        return nullptr;
    }

    std::int32_t binary(int min_level, int depth) {
        std::int32_t left = unary(depth);
        for (;;) {
            const BinOp* b = peek_binary(min_level);
            if (!b) return left;
            pos_ += b->token.size();
            // left-associative: the right side takes only tighter operators
            std::int32_t right = binary(b->level + 1, depth);
            left = add(b->op, left, right);
        }
    }

    std::int32_t unary(int depth) {
        if (depth > kMaxDepth) error("nested too deeply");
        skip();
        if (pos_ < s_.size()) {
            Op op;
            switch (s_[pos_]) {
                case '-':
                    op = Op::neg;
                    break;
                case '+':
                    op = Op::plus;
                    break;
                case '!':
                    op = Op::lnot;
                    break;
                case '~':
                    op = Op::bnot;
                    break;
                default:
                    return power(depth);
            }
            ++pos_;
            return add(op, unary(depth + 1));
        }
        return power(depth);
    }

    std::int32_t power(int depth) {
        std::int32_t base = primary(depth);
        skip();
        if (s_.substr(pos_).starts_with("**")) {
            pos_ += 2;
            return add(Op::pow, base, unary(depth + 1));  // right-associative
        }
        return base;
    }

    std::int32_t primary(int depth) {
        skip();
        if (pos_ >= s_.size()) error("expected an operand");
        std::string_view rest = s_.substr(pos_);
        if (rest.starts_with("%p")) {
            pos_ += 2;
            e_.uses_value_ = true;
            return add(Op::value);
        }
        if (rest[0] == '(') {
            ++pos_;
            std::int32_t inner = binary(0, depth + 1);
            skip();
            if (pos_ >= s_.size() || s_[pos_] != ')') error("expected ')'");
            ++pos_;
            return inner;
        }
        Value v;
        std::size_t n = scan_unsigned(rest, v);
        if (n == 0) {
            if (is_digit(rest[0])) error("number out of range");
            error("expected an operand (a number, %p or '(')");
        }
        pos_ += n;
        if (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '.'))
            error("malformed number");
        return add(Op::constant, -1, -1, v);
    }

    NumericExpression& e_;
    std::string_view s_;
    std::size_t pos_ = 0;
};

NumericExpression NumericExpression::parse(std::string_view text) {
    NumericExpression e;
    e.text_ = std::string(text);
    ExpressionParser(e, e.text_).parse();
    return e;
}

NumericExpression::Result NumericExpression::evaluate(std::string_view header_value) const noexcept {
    Value p;
    bool p_ok = parse_number(header_value, p);
    return eval(root_, p, p_ok);
}

NumericExpression::Result NumericExpression::eval(std::int32_t index, const Value& p, bool p_ok) const noexcept {
    const Node& n = nodes_[static_cast<std::size_t>(index)];
    switch (n.op) {
        case Op::constant:
            return ok(n.constant);
        case Op::value:
            return p_ok ? ok(p) : fail(Status::not_a_number);
        case Op::land:
        case Op::lor: {
            Result a = eval(n.a, p, p_ok);
            if (a.status != Status::ok) return a;
            bool at = truth(a.value);
            if (n.op == Op::land ? !at : at) return ok_int(at ? 1 : 0);
            Result b = eval(n.b, p, p_ok);
            if (b.status != Status::ok) return b;
            return ok_int(truth(b.value) ? 1 : 0);
        }
        default:
            break;
    }
    Result a = eval(n.a, p, p_ok);
    if (a.status != Status::ok) return a;
    const Value x = a.value;
    switch (n.op) {
        case Op::neg:
            if (x.is_int) {
                if (x.i == std::numeric_limits<std::int64_t>::min()) return fail(Status::overflow);
                return ok_int(-x.i);
            }
            return ok(Value{false, 0, -x.d});
        case Op::plus:
            return ok(x);
        case Op::lnot:
            return ok_int(truth(x) ? 0 : 1);
        case Op::bnot:
            if (!x.is_int) return fail(Status::not_integer);
            return ok_int(~x.i);
        default:
            break;
    }
    Result b = eval(n.b, p, p_ok);
    if (b.status != Status::ok) return b;
    const Value y = b.value;
    const bool ints = x.is_int && y.is_int;
    std::int64_t r = 0;
    switch (n.op) {
        case Op::add:
            if (!ints) return ok(Value{false, 0, as_double(x) + as_double(y)});
            if (__builtin_add_overflow(x.i, y.i, &r)) return fail(Status::overflow);
            return ok_int(r);
        case Op::sub:
            if (!ints) return ok(Value{false, 0, as_double(x) - as_double(y)});
            if (__builtin_sub_overflow(x.i, y.i, &r)) return fail(Status::overflow);
            return ok_int(r);
        case Op::mul:
            if (!ints) return ok(Value{false, 0, as_double(x) * as_double(y)});
            if (__builtin_mul_overflow(x.i, y.i, &r)) return fail(Status::overflow);
            return ok_int(r);
        case Op::div:
            if (ints) {
                if (y.i == 0) return fail(Status::division_by_zero);
                if (x.i == std::numeric_limits<std::int64_t>::min() && y.i == -1) return fail(Status::overflow);
                if (x.i % y.i == 0) return ok_int(x.i / y.i);
            } else if (as_double(y) == 0) {
                return fail(Status::division_by_zero);
            }
            return ok(Value{false, 0, as_double(x) / as_double(y)});
        case Op::mod:
            if (ints) {
                if (y.i == 0) return fail(Status::division_by_zero);
                if (y.i == -1) return ok_int(0);  // INT64_MIN % -1 would trap
                return ok_int(x.i % y.i);
            }
            if (as_double(y) == 0) return fail(Status::division_by_zero);
            return ok(Value{false, 0, std::fmod(as_double(x), as_double(y))});
        case Op::pow: {
            if (ints && y.i >= 0) {
                std::int64_t result = 1, base = x.i;
                for (std::int64_t e = y.i; e > 0; e >>= 1) {
                    if ((e & 1) && __builtin_mul_overflow(result, base, &result)) return fail(Status::overflow);
                    // a higher bit of e is set, so the result needs base squared (or more) too
                    if (e > 1 && __builtin_mul_overflow(base, base, &base)) return fail(Status::overflow);
                }
                return ok_int(result);
            }
            double v = std::pow(as_double(x), as_double(y));
            if (std::isnan(v)) return fail(Status::overflow);
            return ok(Value{false, 0, v});
        }
        case Op::shl:
        case Op::shr:
            if (!ints) return fail(Status::not_integer);
            if (y.i < 0 || y.i > 63) return fail(Status::overflow);
            if (n.op == Op::shr) return ok_int(x.i >> y.i);
            r = static_cast<std::int64_t>(static_cast<std::uint64_t>(x.i) << y.i);
            if ((r >> y.i) != x.i) return fail(Status::overflow);
            return ok_int(r);
        case Op::band:
        case Op::bxor:
        case Op::bor:
            if (!ints) return fail(Status::not_integer);
            return ok_int(n.op == Op::band ? (x.i & y.i) : n.op == Op::bxor ? (x.i ^ y.i) : (x.i | y.i));
        case Op::lt:
        case Op::le:
        case Op::gt:
        case Op::ge:
        case Op::eq:
        case Op::ne: {
            int c;
            if (ints) {
                c = x.i < y.i ? -1 : x.i > y.i ? 1 : 0;
            } else {
                double dx = as_double(x), dy = as_double(y);
                c = dx < dy ? -1 : dx > dy ? 1 : 0;
            }
            bool t = n.op == Op::lt   ? c < 0
                     : n.op == Op::le ? c <= 0
                     : n.op == Op::gt ? c > 0
                     : n.op == Op::ge ? c >= 0
                     : n.op == Op::eq ? c == 0
                                      : c != 0;
            return ok_int(t ? 1 : 0);
        }
        default:
            break;
    }
    return fail(Status::overflow);  // not reached: every operator is handled above
}

const char* to_string(NumericExpression::Status s) noexcept {
    switch (s) {
        case Status::ok:
            return "ok";
        case Status::not_a_number:
            return "the header value is not a number";
        case Status::division_by_zero:
            return "division by zero";
        case Status::overflow:
            return "out of range";
        case Status::not_integer:
            return "bitwise operator on a decimal number";
    }
    return "error";
}

}  // namespace qv
