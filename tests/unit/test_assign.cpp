#include <catch2/catch.hpp>

#include "helpers.hpp"
#include "qvmail/assign.hpp"
#include "qvmail/cdb.hpp"
#include "qvmail/error.hpp"
#include "qvmail/line_reader.hpp"

using namespace std::string_literals;

namespace {
std::vector<std::pair<std::string, std::string>> compile(const std::string& text) {
    struct Sink : qv::CdbSink {
        std::vector<std::pair<std::string, std::string>> recs;
        void add(std::string_view k, std::string_view v) override {
            count(k, v);
            recs.emplace_back(k, v);
        }
    } sink;
    auto in = qv::LineReader::from_text(text, "users/assign");
    qv::compile_assign(in, sink);
    return sink.recs;
}
}  // namespace

TEST_CASE("users/assign compiles as qmail-newu does (the reference's worked dump)", "[assign]") {
    auto recs = compile(
        "+example.com-:example.com:555:555:/var/indimail/domains/example.com:-::\n"
        "=Joe.Shmoe:joe:503:78:/home/joe:::\n"
        ".\n");
    REQUIRE(recs.size() == 3);
    CHECK(recs[0].first == "!example.com-");
    CHECK(recs[0].second ==
          "example.com\0"
          "555\0"
          "555\0/var/indimail/domains/example.com\0-\0"s);
    CHECK(recs[0].second.size() == 56);
    CHECK(recs[1].first == "!joe.shmoe\0"s);
    CHECK(recs[1].second ==
          "joe\0"
          "503\0"
          "78\0/home/joe\0\0"s);
    CHECK(recs[1].second.size() == 22);
    CHECK(recs[2].first.empty());
    CHECK(recs[2].second == "-");
}

TEST_CASE("qmail-newu's format errors are refused", "[assign]") {
    for (const char* bad : {"+x-:x:1:1:/d:-::\n",                   // no terminating '.'
                            "+x-:x:1:1:/d:-:\n.\n",                 // six fields
                            "no colon\n.\n", ":x:1:1:/d:-::\n.\n",  // ':' first
                            "\n.\n"}) {
        INFO(bad);
        CHECK_THROWS_AS(compile(bad), qv::ParseError);
    }
    CHECK_THROWS_AS(compile("+x-:x:1:1:/d:-::\0\n.\n"s), qv::ParseError);
    // what follows the '.' line is ignored
    CHECK(compile(".\ngarbage\n").size() == 1);
}

TEST_CASE("the assign file keeps other lines and the terminator", "[assign]") {
    qvtest::TempDir d;
    qvtest::write(d / "assign", "=joe:joe:503:78:/home/joe:::\n+a.example-:a.example:1:1:/d/a:-::\n.\n");
    auto a = qv::AssignFile::load(d / "assign");
    CHECK(a.domain("a.example"));
    CHECK_FALSE(a.domain("a.exampl"));
    CHECK_FALSE(a.domain("joe"));
    a.add(qv::domain_assign_entry("b.example", 555, 556, "/d/b"));
    CHECK(a.content() ==
          "=joe:joe:503:78:/home/joe:::\n+a.example-:a.example:1:1:/d/a:-::\n"
          "+b.example-:b.example:555:556:/d/b:-::\n.\n");
    CHECK(a.domains().size() == 2);
    CHECK(a.remove_domain("a.example"));
    CHECK_FALSE(a.remove_domain("a.example"));
    auto e = a.domain("b.example");
    REQUIRE(e);
    CHECK(e->uid == 555u);
    CHECK(e->gid == 556u);
    CHECK(e->dir == "/d/b");
    CHECK(qv::AssignFile::load(d / "missing").content() == ".\n");
}
