// Fuzz target: numerical expressions of vfilter rules. The first line is the expression, the rest the
// header value %p stands for. Properties: parsing either succeeds or throws qv::Error; evaluation never
// traps (UBSan reports any signed overflow, division by zero or bad shift), gives the same result twice,
// and an "ok" decimal result is finite; a number read from a value prints back to the same number.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "qvmail/error.hpp"
#include "qvmail/expression.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    std::size_t nl = text.find('\n');
    std::string_view expr = text.substr(0, nl), value = nl == std::string_view::npos ? "" : text.substr(nl + 1);
    qv::NumericExpression::Value v;
    if (qv::NumericExpression::parse_number(value, v) && v.is_int) {
        qv::NumericExpression::Value back;
        if (!qv::NumericExpression::parse_number(v.str(), back) || !back.is_int || back.i != v.i) std::abort();
    }
    try {
        auto e = qv::NumericExpression::parse(expr);
        auto a = e.evaluate(value), b = e.evaluate(value);
        if (a.status != b.status || a.matches() != b.matches()) std::abort();
        if (a.status == qv::NumericExpression::Status::ok && !a.value.is_int && !std::isfinite(a.value.d)) std::abort();
    } catch (const qv::Error&) {
    }
    return 0;
}
