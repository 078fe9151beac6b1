#include <catch2/catch.hpp>

#include "qvmail/error.hpp"
#include "qvmail/expression.hpp"

using Expr = qv::NumericExpression;
using Status = qv::NumericExpression::Status;

namespace {

Expr::Result eval(const char* expr, const char* value = "0") {
    return Expr::parse(expr).evaluate(value);
}

std::string value_of(const char* expr, const char* value = "0") {
    auto r = eval(expr, value);
    REQUIRE(r.status == Status::ok);
    return r.value.str();
}

}  // namespace

TEST_CASE("numerical expressions: operators, precedence and types", "[expression]") {
    struct Case {
        const char* expr;
        const char* p;
        const char* result;
    };
    const Case cases[] = {
        {"%p > 5", "7", "1"},
        {"%p > 5", "5", "0"},
        {"%p > 5", " +6 ", "1"},
        {"%p >= 3 && %p < 10", "3", "1"},
        {"%p < 0.4", "0.35", "1"},
        {"%p < 0.4", "-1", "1"},
        {"1 + 2 * 3", "0", "7"},
        {"(1 + 2) * 3", "0", "9"},
        {"2 ** 3 ** 2", "0", "512"},  // right-associative
        {"-2 ** 2", "0", "-4"},       // ** binds tighter than unary minus
        {"2 ** -1", "0", "0.5"},
        {"7 / 2", "0", "3.5"},  // exact division
        {"6 / 2", "0", "3"},
        {"7 % 3", "0", "1"},
        {"-7 % 3", "0", "-1"},
        {"1 << 4 | 1", "0", "17"},
        {"0xff & 0x0f ^ 1", "0", "14"},
        {"~0", "0", "-1"},
        {"!%p", "0", "1"},
        {"1 == 1 != 0", "0", "1"},  // (1 == 1) != 0
        {"1 || 1 && 0", "0", "1"},  // && before ||, as in C
        {"0 && 1 / 0", "0", "0"},   // short-circuit: the division never runs
        {"1 || 1 / 0", "0", "1"},
        {"%p * 2 + %p", "12", "36"},
        {"99999999999999999999 > 1", "0", "1"},  // beyond 64 bits: a decimal
    };
    for (auto& c : cases) {
        INFO(c.expr << " with %p = " << c.p);
        CHECK(value_of(c.expr, c.p) == c.result);
    }
    CHECK(Expr::parse("%p > 5").uses_value());
    CHECK_FALSE(Expr::parse("5 > 3").uses_value());
}

TEST_CASE("numerical expressions never divide by zero or overflow", "[expression]") {
    struct Case {
        const char* expr;
        const char* p;
        Status status;
    };
    const Case cases[] = {
        {"%p / 0", "5", Status::division_by_zero},
        {"%p % 0", "5", Status::division_by_zero},
        {"%p / 0.0", "5", Status::division_by_zero},
        {"1 / (%p - 7)", "7", Status::division_by_zero},
        {"9223372036854775807 + %p", "1", Status::overflow},
        {"-9223372036854775807 - %p", "2", Status::overflow},
        {"%p * 4611686018427387904", "2", Status::overflow},
        {"-(-9223372036854775807 - 1)", "0", Status::overflow},
        {"(-9223372036854775807 - 1) / -1", "0", Status::overflow},
        {"2 ** 63", "0", Status::overflow},
        {"3 ** 100000000000", "0", Status::overflow},  // by squaring: no long loop
        {"10.0 ** 400", "0", Status::overflow},
        {"(-8) ** 0.5", "0", Status::overflow},  // not a real number
        {"1 << 64", "0", Status::overflow},
        {"1 << -1", "0", Status::overflow},
        {"3 << 62", "0", Status::overflow},
        {"1.5 & 1", "0", Status::not_integer},
        {"~%p", "0.5", Status::not_integer},
        {"%p > 5", "five", Status::not_a_number},
        {"%p > 5", "5 apples", Status::not_a_number},
        {"%p > 5", "", Status::not_a_number},
        {"%p > 5", "0x10", Status::not_a_number},
    };
    for (auto& c : cases) {
        INFO(c.expr << " with %p = '" << c.p << "'");
        auto r = eval(c.expr, c.p);
        CHECK(r.status == c.status);
        CHECK_FALSE(r.matches());
    }
    CHECK(value_of("(-9223372036854775807 - 1) % -1") == "0");
    CHECK(value_of("2 ** 62") == "4611686018427387904");
    CHECK(value_of("-1 >> 1") == "-1");
}

TEST_CASE("malformed expressions are refused when parsed", "[expression]") {
    for (const char* bad :
         {"", "   ", "%p >", "> 5", "%p = 5", "(%p > 5", "%p > 5)", "%p >> >> 1", "5 5", "%p > 5x", "%q > 5", "sin(%p)",
          "HOME > 1", "%p > 1..2", "%p > $ff", "%p ; 1",
          "99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999"
          "99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999"
          "99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999"
          "99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999"}) {
        INFO("'" << bad << "'");
        try {
            Expr::parse(bad);
            FAIL("accepted");
        } catch (const qv::Error& e) {
            CHECK(e.code() == qv::Exit::dataerr);
        }
    }
    std::string deep(100, '(');
    CHECK_THROWS_AS(Expr::parse(deep + "1" + std::string(100, ')')), qv::Error);
    std::string negations(100, '-');
    CHECK_THROWS_AS(Expr::parse(negations + "1"), qv::Error);
    CHECK_THROWS_AS(Expr::parse(std::string(2000, '1')), qv::Error);  // longer than any stored rule
    try {
        Expr::parse("%p = 5");
        FAIL("accepted");
    } catch (const qv::Error& e) {
        CHECK(std::string(e.what()) == "unexpected '=' (equality is ==) at position 4 of the expression '%p = 5'");
    }
}
