#include <catch2/catch.hpp>

#include "helpers.hpp"
#include "qvmail/control.hpp"

using qvtest::TempDir;

TEST_CASE("a missing control file is empty", "[control]") {
    TempDir d;
    auto f = qv::ControlFile::load(d / "rcpthosts");
    CHECK_FALSE(f.exists());
    CHECK(f.entries().empty());
}

TEST_CASE("entries skip comments and blank lines and lose trailing blanks", "[control]") {
    TempDir d;
    qvtest::write(d / "rcpthosts", "# local domains\nexample.com  \n\n  \nexample.org\t\nexample.net\r\n");
    auto f = qv::ControlFile::load(d / "rcpthosts");
    CHECK(f.exists());
    CHECK(f.entries() == std::vector<std::string>{"example.com", "example.org", "example.net"});
    CHECK(f.contains("example.org"));
    CHECK_FALSE(f.contains("example"));
}

TEST_CASE("add appends once, remove matches whole lines only", "[control]") {
    TempDir d;
    qvtest::write(d / "rcpthosts", "# keep me\nexample.com\nexample.com.au\n\nexample.org\n");
    auto f = qv::ControlFile::load(d / "rcpthosts");
    CHECK_FALSE(f.add("example.com"));
    CHECK(f.add("example.net"));
    CHECK(f.remove("example.com") == 1);  // example.com.au stays
    CHECK(f.remove("example") == 0);
    f.save();
    CHECK(qvtest::slurp(d / "rcpthosts") == "# keep me\nexample.com.au\n\nexample.org\nexample.net\n");
}

TEST_CASE("remove takes out every copy of a duplicated line", "[control]") {
    TempDir d;
    qvtest::write(d / "f", "a\nb\na  \n");
    auto f = qv::ControlFile::load(d / "f");
    CHECK(f.remove("a") == 2);
    CHECK(f.lines() == std::vector<std::string_view>{"b"});
    CHECK(f.text() == "b\n");
}

TEST_CASE("a last line without newline gets one", "[control]") {
    TempDir d;
    qvtest::write(d / "f", "a\nb");
    auto f = qv::ControlFile::load(d / "f");
    CHECK(f.add("c"));
    CHECK(f.text() == "a\nb\nc\n");
    CHECK(f.count_entries() == 3);
}

TEST_CASE("control_entry ignores comments", "[control]") {
    CHECK(qv::control_entry("#x").empty());
    CHECK(qv::control_entry("x # not a comment") == "x # not a comment");
}
