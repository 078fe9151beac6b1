#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "helpers.hpp"
#include "qvmail/cdb.hpp"
#include "qvmail/cdb_sources.hpp"
#include "qvmail/error.hpp"
#include "qvmail/line_reader.hpp"
#include "qvmail/paths.hpp"

using namespace std::chrono_literals;
using qvtest::TempDir;
namespace fs = std::filesystem;

namespace {

struct Home {
    TempDir dir;
    qv::Paths paths = qv::Paths::from(qv::Env(qv::Env::Vars{{"QMAILHOME", dir.path().string()}}));
    Home() {
        fs::create_directories(paths.etc_dir());
        fs::create_directories(paths.controldir);
    }
    const qv::CdbSource& source(const std::string& name) {
        sources = qv::cdb_sources(paths);
        for (auto& s : sources)
            if (s.name == name) return s;
        FAIL("no source named " << name);
        throw;
    }
    std::vector<qv::CdbSource> sources;
};

std::vector<std::string> names(const std::vector<qv::CdbSource>& v) {
    std::vector<std::string> out;
    for (auto& s : v) out.push_back(s.name);
    return out;
}

void make_newer(const fs::path& p) {
    fs::last_write_time(p, fs::file_time_type::clock::now() + 10s);
}

}  // namespace

TEST_CASE("sources: tcp.smtp first, other tcp.<service> files by name, then the control files", "[cdb_sources]") {
    Home h;
    qvtest::write(h.paths.etc_dir() / "tcp.pop3", ":allow\n");
    qvtest::write(h.paths.etc_dir() / "tcp.imap.cdb", "");  // a cdb alone still names its database
    qvtest::write(h.paths.etc_dir() / "tcp.smtp.old", "");  // backups are not rules files
    qvtest::write(h.paths.etc_dir() / ".tcp.smtp.cdb.tmp.ab12", "");
    auto s = qv::cdb_sources(h.paths);
    CHECK(names(s) ==
          std::vector<std::string>{"tcp.smtp", "tcp.imap", "tcp.pop3", "morercpthosts", "relaymailfrom", "assign"});
    CHECK(s[0].target == h.paths.etc_dir() / "tcp.smtp.cdb");
    CHECK(s[3].target == h.paths.controldir / "morercpthosts.cdb");
}

TEST_CASE("a database is rebuilt when missing, changed, damaged or forced, and only then", "[cdb_sources]") {
    Home h;
    qvtest::write(h.paths.tcp_file, "127.:allow,RELAYCLIENT=\"\"\n:allow\n");
    const auto& src = h.source("tcp.smtp");

    auto r = qv::build_cdb(src, {});
    CHECK(r.status == qv::CdbStatus::rebuilt);
    CHECK(r.reason == "no cdb yet");
    CHECK(r.records == 2);
    CHECK(r.bytes == fs::file_size(src.target));

    auto before = fs::last_write_time(src.target);
    r = qv::build_cdb(src, {});
    CHECK(r.status == qv::CdbStatus::up_to_date);
    CHECK(r.records == 2);
    CHECK(fs::last_write_time(src.target) == before);

    make_newer(src.source);
    r = qv::build_cdb(src, {});
    CHECK(r.status == qv::CdbStatus::rebuilt);
    CHECK(r.reason == "source changed");

    make_newer(src.target);
    r = qv::build_cdb(src, {.force = true});
    CHECK(r.status == qv::CdbStatus::rebuilt);
    CHECK(r.reason == "forced");

    fs::resize_file(src.target, 2100);  // truncated by a full disk, say
    make_newer(src.target);
    r = qv::build_cdb(src, {});
    CHECK(r.status == qv::CdbStatus::rebuilt);
    CHECK(r.reason == "cdb damaged");
    CHECK_NOTHROW(qv::CdbReader(src.target).verify());
}

TEST_CASE("check and dry-run write nothing", "[cdb_sources]") {
    Home h;
    qvtest::write(h.paths.tcp_file, "1.2.3.1-10:deny\n");
    const auto& src = h.source("tcp.smtp");
    auto r = qv::build_cdb(src, {.check = true});
    CHECK(r.status == qv::CdbStatus::valid);
    CHECK_FALSE(r.was_up_to_date);
    CHECK(r.records == 10);
    r = qv::build_cdb(src, {.dry_run = true});
    CHECK(r.status == qv::CdbStatus::would_rebuild);
    CHECK(r.records == 10);
    CHECK_FALSE(fs::exists(src.target));
    CHECK(qvtest::listing(h.paths.etc_dir()) == std::vector<std::string>{"tcp.smtp"});
}

TEST_CASE("a bad line leaves the old cdb untouched and no temporary file", "[cdb_sources]") {
    Home h;
    qvtest::write(h.paths.tcp_file, ":allow\n");
    const auto& src = h.source("tcp.smtp");
    qv::build_cdb(src, {});
    std::string old = qvtest::slurp(src.target);
    qvtest::write(h.paths.tcp_file, ":allow\n1.2.3.4:allow,X=unquoted\n");
    make_newer(src.source);
    CHECK_THROWS_AS(qv::build_cdb(src, {}), qv::ParseError);
    CHECK(qvtest::slurp(src.target) == old);
    CHECK(qvtest::listing(h.paths.etc_dir()) == std::vector<std::string>{"tcp.smtp", "tcp.smtp.cdb"});
}

TEST_CASE("a missing source is a missing input", "[cdb_sources]") {
    Home h;
    try {
        qv::build_cdb(h.source("morercpthosts"), {});
        FAIL("built from nothing");
    } catch (const qv::Error& e) {
        CHECK(e.code() == qv::Exit::noinput);
        CHECK_THAT(e.what(), Catch::Contains("morercpthosts"));
    }
}

TEST_CASE("line files compile as qmail-newmrh: lower case, blanks and comments skipped", "[cdb_sources]") {
    Home h;
    qvtest::write(h.paths.control("morercpthosts"),
                  "Example.COM  \n# comment\n\n   \nexample.org\t\n  Lead.example\nlast.example");
    auto r = qv::build_cdb(h.source("morercpthosts"), {});
    CHECK(r.records == 4);
    qv::CdbReader db(h.paths.control("morercpthosts.cdb"));
    std::vector<std::pair<std::string, std::string>> recs;
    db.for_each([&](std::string_view k, std::string_view v) { recs.emplace_back(k, v); });
    CHECK(recs == std::vector<std::pair<std::string, std::string>>{
                      {"example.com", ""}, {"example.org", ""}, {"  lead.example", ""}, {"last.example", ""}});
}

TEST_CASE("a CR at the end of a control line is kept, with a warning", "[cdb_sources]") {
    Home h;
    qvtest::write(h.paths.control("relaymailfrom"), "boss@example.com\r\n");
    auto r = qv::build_cdb(h.source("relaymailfrom"), {});
    REQUIRE(r.warnings.size() == 1);
    CHECK(r.warnings[0].line == 1);
    qv::CdbReader db(h.paths.control("relaymailfrom.cdb"));
    CHECK(db.find("boss@example.com\r").has_value());
}
