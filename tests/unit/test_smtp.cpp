#include <catch2/catch.hpp>

#include "qvmail/smtp.hpp"

using qv::smtp::parse_path;
using qv::smtp::PathError;
using namespace std::string_literals;

namespace {
std::string address_of(std::string_view arg, std::string_view prefix = "TO:") {
    auto [p, err] = parse_path(arg, prefix);
    REQUIRE(p);
    return p->address;
}
PathError error_of(std::string_view arg, std::string_view prefix = "TO:") {
    auto [p, err] = parse_path(arg, prefix);
    CHECK_FALSE(p);
    return err;
}
}  // namespace

TEST_CASE("command lines: the verb upper-cased, the argument after the spaces", "[smtp]") {
    auto c = qv::smtp::parse_command("mail   FROM:<a@b>");
    CHECK(c.verb == "MAIL");
    CHECK(c.arg == "FROM:<a@b>");
    CHECK(qv::smtp::parse_command("QUIT").arg.empty());
    CHECK(qv::smtp::parse_command("").verb.empty());
    CHECK(qv::smtp::parse_command("ehlo x y").arg == "x y");
}

TEST_CASE("paths are read as qmail reads them", "[smtp]") {
    CHECK(address_of("TO:<joe@example.com>") == "joe@example.com");
    CHECK(address_of("to: <joe@example.com>") == "joe@example.com");           // case, blanks after ':'
    CHECK(address_of("TO :<joe@example.com>") == "joe@example.com");           // and before it
    CHECK(address_of("TO:joe@example.com") == "joe@example.com");              // no brackets: to the space
    CHECK(address_of("TO:<>") == "");
    CHECK(address_of("TO:<postmaster>") == "postmaster");
    // the open-relay families come out as qmail sees them, for the relay policy to judge
    CHECK(address_of("TO:<\"friend@remote\">") == "friend@remote");
    CHECK(address_of("TO:<\"friend@remote\"@example.com>") == "friend@remote@example.com");
    CHECK(address_of("TO:<@example.com,@x.y:friend@remote>") == "friend@remote");  // source route dropped
    CHECK(address_of("TO:<friend\\@remote@example.com>") == "friend@remote@example.com");
    CHECK(address_of("TO:<\"a>b\"@example.com>") == "a>b@example.com");            // '>' quoted
    auto [p, err] = parse_path("FROM:<a@b> SIZE=1000 body=8BITMIME AUTH=<>", "FROM:");
    REQUIRE(p);
    CHECK(p->params == std::vector<std::pair<std::string, std::string>>{
                           {"SIZE", "1000"}, {"BODY", "8BITMIME"}, {"AUTH", "<>"}});
    CHECK(parse_path("TO:<@example.com:friend@remote>", "TO:").first->had_route);
}

TEST_CASE("malformed paths are refused, with the reason", "[smtp]") {
    CHECK(error_of("FROM:<a@b>") == PathError::no_prefix);
    CHECK(error_of("TO <a@b>") == PathError::no_prefix);
    CHECK(error_of("TO:<a@b") == PathError::syntax);          // no '>'
    CHECK(error_of("TO:a@b>") == PathError::syntax);          // a stray bracket
    CHECK(error_of("TO:<\"a@b>") == PathError::syntax);       // an open quote
    CHECK(error_of("TO:<a@b>junk") == PathError::syntax);     // no blank before a parameter
    CHECK(error_of("TO:<@example.com>") == PathError::syntax);  // a route that never ends
    CHECK(error_of("TO:<a@b> =x") == PathError::bad_parameter);
    CHECK(error_of("TO:<a@b> K=v\x01") == PathError::bad_parameter);
    CHECK(error_of("TO:<" + std::string(901, 'a') + ">") == PathError::too_long);
    CHECK(address_of("TO:<" + std::string(900, 'a') + ">").size() == 900);
    CHECK_FALSE(qv::smtp::clean_address("a\0b"s));
    CHECK_FALSE(qv::smtp::clean_address("a\rb"));
    CHECK(qv::smtp::clean_address("user+tag@example.com"));
}

TEST_CASE("base64 both ways, and nothing but base64", "[smtp]") {
    using qv::smtp::base64_decode;
    using qv::smtp::base64_encode;
    for (std::string s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", "\0\xff\x10"s})
        CHECK(base64_decode(base64_encode(s)) == s);
    CHECK(base64_encode("foobar") == "Zm9vYmFy");
    CHECK(base64_encode("fo") == "Zm8=");
    CHECK_FALSE(base64_decode("Zm8"));      // not a multiple of 4
    CHECK_FALSE(base64_decode("Zm=8"));     // padding inside
    CHECK_FALSE(base64_decode("Z==="));
    CHECK_FALSE(base64_decode("Zm9v YmFy"));
    CHECK_FALSE(base64_decode("Zm8=Zm8="));  // data after padding
    CHECK_FALSE(base64_decode("Zm9="));      // padding bits set: "fo" is Zm8=
    CHECK_FALSE(base64_decode("Zh=="));
    // RFC 2195's response, as the server decodes it
    auto r = qv::smtp::parse_cram_response(*base64_decode("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"));
    REQUIRE(r);
    CHECK(r->first == "tim");
    CHECK(r->second == "b913a602c7eda7a495b4e6e7334d3890");
    CHECK_FALSE(qv::smtp::parse_cram_response("tim B913A602C7EDA7A495B4E6E7334D3890"));  // upper-case hex
    CHECK_FALSE(qv::smtp::parse_cram_response("b913a602c7eda7a495b4e6e7334d3890"));      // no user
}

TEST_CASE("AUTH PLAIN: authzid, user and password", "[smtp]") {
    auto c = qv::smtp::parse_auth_plain("\0test@example.com\0secret"s);
    REQUIRE(c);
    CHECK(c->user == "test@example.com");
    CHECK(c->password == "secret");
    CHECK(qv::smtp::parse_auth_plain(*qv::smtp::base64_decode("AHRlc3RAZXhhbXBsZS5jb20Ac2VjcmV0"))->user ==
          "test@example.com");
    CHECK_FALSE(qv::smtp::parse_auth_plain("\0\0pw"s));            // no user
    CHECK_FALSE(qv::smtp::parse_auth_plain("user"));                              // one field
    CHECK_FALSE(qv::smtp::parse_auth_plain("a\0b\0c\0d"s));       // four
}
