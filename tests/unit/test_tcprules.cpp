#include <catch2/catch.hpp>

#include "helpers.hpp"
#include "qvmail/atomic_file.hpp"
#include "qvmail/cdb.hpp"
#include "qvmail/error.hpp"
#include "qvmail/line_reader.hpp"
#include "qvmail/tcprules.hpp"

using namespace std::string_literals;
using qv::tcprules::LineKind;
using qvtest::TempDir;

namespace {

struct LineCase {
    std::string line;
    LineKind kind;
    std::string address;
    std::string value;
    bool error;
};

std::vector<std::string> expand(std::string_view a, bool* ok = nullptr) {
    std::vector<std::string> keys;
    bool r = qv::tcprules::expand_address(a, [&](std::string_view k) { keys.emplace_back(k); });
    if (ok) *ok = r;
    return keys;
}

const char* kWorkedExample =
    "# comment\n"
    "127.0.0.1:allow,RELAYCLIENT=\"\"\n"
    "10.1.1.:allow,RELAYCLIENT=\"\",QMAILQUEUE=\"/var/qmail/bin/qmail-scanner-queue\"\n"
    "1.2.3.4-6:deny\n"
    "=mail.example.com:allow,RELAYCLIENT=\"\"\n"
    "joe@192.168.0.5:allow,X=/a=b,c/\n"
    ":allow\n";

std::filesystem::path compile_to(const TempDir& d, const std::string& text, qv::CompileStats* stats = nullptr) {
    auto src = d / "tcp.smtp";
    qvtest::write(src, text);
    auto out = d / "tcp.smtp.cdb";
    qv::LineReader in(src);
    qv::AtomicFile f(out);
    qv::CdbWriter w(f.fd(), f.temp_path());
    auto s = qv::tcprules::compile(in, w);
    w.finish();
    f.commit();
    if (stats) *stats = s;
    return out;
}

}  // namespace

TEST_CASE("rule lines parse and encode as tcprules does", "[tcprules]") {
    const std::vector<LineCase> cases = {
        {"127.0.0.1:allow,RELAYCLIENT=\"\"", LineKind::rule, "127.0.0.1", "+RELAYCLIENT=\0"s, false},
        {":allow", LineKind::rule, "", "", false},
        {"1.2.3.4:deny", LineKind::rule, "1.2.3.4", "D\0"s, false},
        {"1.2.3.4:deny,A=\"b\"", LineKind::rule, "1.2.3.4", "D\0+A=b\0"s, false},
        {"x:allow,A=abca", LineKind::rule, "x", "+A=bc\0"s, false},        // 'a' is the quote
        {"x:allow,X=/a=b,c/", LineKind::rule, "x", "+X=a=b,c\0"s, false},  // no escapes inside quotes
        {"x:allow,A=,v,", LineKind::rule, "x", "+A=v\0"s, false},          // even ',' can quote
        {"x:allow,=\"\"", LineKind::rule, "x", "+=\0"s, false},            // empty name is accepted
        {"x:allow,A=\"1\",B='2'", LineKind::rule, "x", "+A=1\0+B=2\0"s, false},
        {"  1.2.3.4:allow", LineKind::rule, "  1.2.3.4", "", false},   // leading blanks are kept
        {"1.2.3.4:allow \t  ", LineKind::rule, "1.2.3.4", "", false},  // trailing blanks are not
        {"a:b:allow", LineKind::rule, "a", "", true},                  // the first ':' ends the address
        {"x:allow,A=abc", LineKind::rule, "x", "", true},              // unquoted value
        {"x:allowx", LineKind::rule, "x", "", true},
        {"x:permit", LineKind::rule, "x", "", true},
        {"x:allow,", LineKind::rule, "x", "", true},
        {"x:allow,A", LineKind::rule, "x", "", true},
        {"x:allow,A=", LineKind::rule, "x", "", true},
        {"x:allow,A=\"v\"junk", LineKind::rule, "x", "", true},
        {"x:allow\r", LineKind::rule, "x", "", true},  // CR is not a blank for tcprules
        {"# 1.2.3.4:allow", LineKind::comment, "", "", false},
        {"#", LineKind::comment, "", "", false},
        {"", LineKind::blank, "", "", false},
        {"   \t", LineKind::blank, "", "", false},
        {"no colon here", LineKind::no_colon, "", "", false},
        {" # not a comment:allow", LineKind::rule, " # not a comment", "", false},
    };
    std::string value;
    for (auto& c : cases) {
        INFO("line: " << qv::printable(c.line));
        auto p = qv::tcprules::parse_line(c.line, value);
        CHECK(p.kind == c.kind);
        CHECK(!p.error.empty() == c.error);
        if (c.kind == LineKind::rule) CHECK(std::string(p.address) == c.address);
        if (!c.error) CHECK(value == c.value);
    }
}

TEST_CASE("address ranges expand like tcprules", "[tcprules]") {
    CHECK(expand("1.2.3.4") == std::vector<std::string>{"1.2.3.4"});
    auto r = expand("1.2.3.37-53");
    REQUIRE(r.size() == 17);
    CHECK(r.front() == "1.2.3.37");
    CHECK(r.back() == "1.2.3.53");
    CHECK(expand("10.2-3.") == std::vector<std::string>{"10.2.", "10.3."});
    CHECK(expand("1.2.3.9-4").empty());                                                      // reversed: nothing
    CHECK(expand("1.2.3.250-300").size() == 6);                                              // clamped at 255
    CHECK(expand("1.2.3.-2") == std::vector<std::string>{"1.2.3.0", "1.2.3.1", "1.2.3.2"});  // empty = 0
    CHECK(expand("1.2.3.04-05") == std::vector<std::string>{"1.2.3.4", "1.2.3.5"});
    CHECK(expand("0-1") == std::vector<std::string>{"0", "1"});
    CHECK(expand("=host-name.example") == std::vector<std::string>{"=host-name.example"});  // '=' : literal
    CHECK(expand("joe@1.2.3.4-5") == std::vector<std::string>{"joe@1.2.3.4-5"});            // '@' : literal
    bool ok = true;
    CHECK(expand("a-b", &ok).empty());
    CHECK_FALSE(ok);
    expand("1.2.3.4x-5", &ok);
    CHECK_FALSE(ok);
    expand("1.2.3.4\0x-5"s, &ok);  // scan_ulong stops at the NUL, which tcprules accepts
    CHECK(ok);
}

TEST_CASE("probe order is tcpserver's", "[tcprules]") {
    qv::tcprules::Client c{"10.1.1.5", "mail.example.com", std::nullopt};
    CHECK(qv::tcprules::probe_keys(c) == std::vector<std::string>{"10.1.1.5", "=mail.example.com", "10.1.1.", "10.1.",
                                                                  "10.", "=.example.com", "=.com", "=", ""});
    qv::tcprules::Client i{"1.2.3.4", "h.x", "joe"};
    auto keys = qv::tcprules::probe_keys(i);
    REQUIRE(keys.size() >= 3);
    CHECK(keys[0] == "joe@1.2.3.4");
    CHECK(keys[1] == "joe@=h.x");
    CHECK(keys[2] == "1.2.3.4");
    qv::tcprules::Client bare{"8.8.8.8", std::nullopt, std::nullopt};
    CHECK(qv::tcprules::probe_keys(bare) == std::vector<std::string>{"8.8.8.8", "8.8.8.", "8.8.", "8.", ""});
}

TEST_CASE("values decode as tcpserver reads them", "[tcprules]") {
    auto d = qv::tcprules::decode("D\0+A=b\0"s);
    CHECK(d.deny);
    REQUIRE(d.env.size() == 1);
    CHECK(d.env[0] == std::pair<std::string, std::string>{"A", "b"});
    auto e = qv::tcprules::decode("+NOEQUALS\0+X=\0+Y=a=b\0trailing-without-nul"s);
    CHECK_FALSE(e.deny);
    CHECK(e.env == std::vector<std::pair<std::string, std::string>>{{"X", ""}, {"Y", "a=b"}});
}

TEST_CASE("the reference's worked example compiles and answers as tcprulescheck", "[tcprules]") {
    TempDir d;
    qv::CompileStats stats;
    auto cdb = compile_to(d, kWorkedExample, &stats);
    CHECK(stats.lines == 7);
    CHECK(stats.entries == 6);
    CHECK(std::filesystem::file_size(cdb) == 2413);
    qv::CdbReader db(cdb);
    CHECK(db.header_records() == 8);

    auto m = qv::tcprules::lookup(db, {"10.1.1.5", std::nullopt, std::nullopt});
    CHECK(m.key == "10.1.1.");
    CHECK_FALSE(m.decision.deny);
    CHECK(m.decision.env == std::vector<std::pair<std::string, std::string>>{
                                {"RELAYCLIENT", ""}, {"QMAILQUEUE", "/var/qmail/bin/qmail-scanner-queue"}});
    CHECK(m.probed == std::vector<std::string>{"10.1.1.5", "10.1.1."});

    m = qv::tcprules::lookup(db, {"1.2.3.5", std::nullopt, std::nullopt});
    CHECK(m.key == "1.2.3.5");
    CHECK(m.decision.deny);

    m = qv::tcprules::lookup(db, {"8.8.8.8", std::nullopt, std::nullopt});
    CHECK(m.key == "");
    CHECK_FALSE(m.decision.deny);

    m = qv::tcprules::lookup(db, {"8.8.8.8", "mail.example.com", std::nullopt});
    CHECK(m.key == "=mail.example.com");

    m = qv::tcprules::lookup(db, {"192.168.0.5", std::nullopt, "joe"});
    CHECK(m.key == "joe@192.168.0.5");
    CHECK(m.decision.env == std::vector<std::pair<std::string, std::string>>{{"X", "a=b,c"}});
}

TEST_CASE("without a default rule, an unmatched client gets no rule", "[tcprules]") {
    TempDir d;
    auto cdb = compile_to(d, "127.:allow\n");
    qv::CdbReader db(cdb);
    auto m = qv::tcprules::lookup(db, {"8.8.8.8", std::nullopt, std::nullopt});
    CHECK_FALSE(m.key.has_value());
    CHECK_FALSE(m.decision.deny);
}

TEST_CASE("duplicate keys: the first line wins and is the one reported", "[tcprules]") {
    TempDir d;
    auto cdb = compile_to(d, "5.5.5.5:allow,A=\"first\"\n# x\n5.5.5.5:deny\n5.5.5.3-6:deny\n");
    qv::CdbReader db(cdb);
    auto m = qv::tcprules::lookup(db, {"5.5.5.5", std::nullopt, std::nullopt});
    CHECK_FALSE(m.decision.deny);
    auto src = qv::tcprules::find_source_rule(d / "tcp.smtp", "5.5.5.5");
    REQUIRE(src);
    CHECK(src->line == 1);
    src = qv::tcprules::find_source_rule(d / "tcp.smtp", "5.5.5.4");
    REQUIRE(src);
    CHECK(src->line == 4);
    CHECK(src->text == "5.5.5.3-6:deny");
    CHECK_FALSE(qv::tcprules::find_source_rule(d / "tcp.smtp", "9.9.9.9"));
}

TEST_CASE("a bad line is reported with file, line number and text", "[tcprules]") {
    TempDir d;
    try {
        compile_to(d, "1.2.3.4:allow\n\n10.:allow,RELAYCLIENT=oops   \n");
        FAIL("compiled a bad file");
    } catch (const qv::ParseError& e) {
        CHECK(e.code() == qv::Exit::dataerr);
        CHECK(e.line() == 3);
        CHECK(e.text() == "10.:allow,RELAYCLIENT=oops");
        CHECK_THAT(e.what(), Catch::Contains("tcp.smtp:3:"));
        CHECK_THAT(e.what(), Catch::Contains("10.:allow,RELAYCLIENT=oops"));
    }
    try {
        compile_to(d, "1.2.3.4:allow\r\n");
        FAIL("compiled a CRLF file");
    } catch (const qv::ParseError& e) {
        CHECK_THAT(e.what(), Catch::Contains("carriage return"));
    }
    try {
        compile_to(d, "1.2.x-5:deny\n");
        FAIL("compiled a bad range");
    } catch (const qv::ParseError& e) {
        CHECK_THAT(e.what(), Catch::Contains("range"));
    }
}

TEST_CASE("lines without a colon are skipped with a warning", "[tcprules]") {
    TempDir d;
    qv::CompileStats stats;
    auto cdb = compile_to(d, "1.2.3.4:allow\nforgot the colon\n", &stats);
    REQUIRE(stats.warnings.size() == 1);
    CHECK(stats.warnings[0].line == 2);
    qv::CdbReader db(cdb);
    CHECK(db.header_records() == 1);
}

TEST_CASE("the last line may lack its newline", "[tcprules]") {
    TempDir d;
    auto cdb = compile_to(d, "1.2.3.4:deny");
    qv::CdbReader db(cdb);
    CHECK(db.find("1.2.3.4") == std::optional<std::string_view>("D\0"s));
}
