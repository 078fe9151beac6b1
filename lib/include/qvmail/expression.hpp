// Numerical logical expressions of vfilter rules (comparison 6): "%p > 5", "%p >= 3 && %p < 10". `%p`
// stands for the value of the header; the rule matches when the expression's value is greater than
// zero.
//
// Grammar (C's operators and precedence, lowest first; ** binds tightest and to the right):
//   ||   &&   |   ^   &   == !=   < <= > >=   << >>   + -   * / %   unary - + ! ~   **
//   operands: integers (decimal or 0x hex), decimals (1.5, .5), %p, parenthesised expressions.
// Values are 64-bit integers, or decimals (double) once a decimal takes part. `/` is exact division
// (7/2 is 3.5, 6/2 is 3). Comparisons and logical operators give 0 or 1, && and || short-circuit.
//
// IndiMail's evaluator also has variables taken from the environment, assignments and functions (sin,
// log, ...); qvmail has none of them: a delivery's outcome must not depend on its environment.
//
// Parsing happens once (vcfilter refuses a malformed expression at insert time). Evaluation never
// divides by zero, never overflows and never throws: such a result is an error status, and the rule
// does not match.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qv {

class NumericExpression {
public:
    // Throws Error 65 naming the problem and its position, e.g. "expected an operand at position 5".
    static NumericExpression parse(std::string_view text);

    enum class Status {
        ok,
        not_a_number,      // %p's header value is not a number
        division_by_zero,  // x / 0, x % 0
        overflow,          // beyond 64-bit integers or finite doubles; shift counts outside 0..63
        not_integer,       // a bitwise operator on a decimal
    };
    struct Value {
        bool is_int = true;
        std::int64_t i = 0;
        double d = 0;
        bool positive() const noexcept { return is_int ? i > 0 : d > 0; }
        std::string str() const;
    };
    struct Result {
        Status status = Status::ok;
        Value value;
        bool matches() const noexcept { return status == Status::ok && value.positive(); }
    };
    // Evaluates with %p set to `header_value` (surrounding blanks ignored; "+5", "-0.5", "12" are
    // numbers; "5 apples" is not).
    Result evaluate(std::string_view header_value) const noexcept;
    bool uses_value() const noexcept { return uses_value_; }
    const std::string& text() const noexcept { return text_; }

    // Reads a header value as a number; false if it is not one.
    static bool parse_number(std::string_view text, Value& out) noexcept;

    enum class Op : std::uint8_t {
        constant,
        value,
        neg,
        plus,
        lnot,
        bnot,
        pow,
        mul,
        div,
        mod,
        add,
        sub,
        shl,
        shr,
        lt,
        le,
        gt,
        ge,
        eq,
        ne,
        band,
        bxor,
        bor,
        land,
        lor,
    };
    struct Node {
        Op op;
        std::int32_t a = -1, b = -1;  // operands: indexes into nodes_
        Value constant;
    };

private:
    NumericExpression() = default;
    Result eval(std::int32_t node, const Value& p, bool p_ok) const noexcept;
    std::string text_;
    std::vector<Node> nodes_;
    std::int32_t root_ = -1;
    bool uses_value_ = false;
    friend class ExpressionParser;
};

const char* to_string(NumericExpression::Status s) noexcept;

}  // namespace qv
