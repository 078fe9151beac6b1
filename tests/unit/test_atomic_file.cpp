#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "helpers.hpp"
#include "qvmail/atomic_file.hpp"
#include "qvmail/error.hpp"

using qvtest::TempDir;

namespace {
mode_t mode_of(const std::filesystem::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}
}  // namespace

TEST_CASE("a new file gets the requested mode and its content", "[atomic_file]") {
    TempDir d;
    qv::replace_file(d / "f", "hello\n", 0640);
    CHECK(qvtest::slurp(d / "f") == "hello\n");
    CHECK(mode_of(d / "f") == 0640);
    CHECK(qvtest::listing(d.path()) == std::vector<std::string>{"f"});
}

TEST_CASE("replacing keeps the old file's mode", "[atomic_file]") {
    TempDir d;
    qvtest::write(d / "f", "old\n");
    ::chmod((d / "f").c_str(), 0600);
    qv::replace_file(d / "f", "new\n", 0644);
    CHECK(qvtest::slurp(d / "f") == "new\n");
    CHECK(mode_of(d / "f") == 0600);
}

TEST_CASE("replacing keeps the old file's owner when run as root", "[atomic_file]") {
    if (::geteuid() != 0) return;  // only root can give a file away
    TempDir d;
    qvtest::write(d / "f", "old\n");
    REQUIRE(::chown((d / "f").c_str(), 1, 2) == 0);
    qv::replace_file(d / "f", "new\n");
    struct stat st {};
    REQUIRE(::stat((d / "f").c_str(), &st) == 0);
    CHECK(st.st_uid == 1u);
    CHECK(st.st_gid == 2u);
}

TEST_CASE("an uncommitted file leaves the old one and no temporary file", "[atomic_file]") {
    TempDir d;
    qvtest::write(d / "f", "old\n");
    {
        qv::AtomicFile f(d / "f");
        f.write("half of the new cont");
        CHECK(std::filesystem::exists(f.temp_path()));
        CHECK(f.temp_path().parent_path() == d.path());
        // destroyed without commit, as when an exception unwinds
    }
    CHECK(qvtest::slurp(d / "f") == "old\n");
    CHECK(qvtest::listing(d.path()) == std::vector<std::string>{"f"});
}

TEST_CASE("a missing directory cannot be written", "[atomic_file]") {
    TempDir d;
    try {
        qv::replace_file(d / "nodir" / "f", "x");
        FAIL("wrote into a missing directory");
    } catch (const qv::Error& e) {
        CHECK(e.code() == qv::Exit::cantcreat);
        CHECK_THAT(e.what(), Catch::Contains("nodir"));
    }
}
