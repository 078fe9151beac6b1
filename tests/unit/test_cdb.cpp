#include <fcntl.h>
#include <sys/stat.h>

#include <array>
#include <catch2/catch.hpp>
#include <utility>
#include <vector>

#include "helpers.hpp"
#include "qvmail/atomic_file.hpp"
#include "qvmail/cdb.hpp"
#include "qvmail/error.hpp"

using namespace std::string_literals;
using qvtest::TempDir;

namespace {

using Records = std::vector<std::pair<std::string, std::string>>;

std::uint64_t make_cdb(const std::filesystem::path& p, const Records& recs) {
    qv::AtomicFile f(p);
    qv::CdbWriter w(f.fd(), f.temp_path());
    for (auto& [k, v] : recs) w.add(k, v);
    w.finish();
    f.commit();
    return w.bytes();
}

std::uint32_t le32(const std::string& s, std::size_t pos) {
    auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(s[pos + i])); };
    return b(0) | b(1) << 8 | b(2) << 16 | b(3) << 24;
}

}  // namespace

TEST_CASE("cdb hash is djb's, bytes taken unsigned", "[cdb]") {
    CHECK(qv::cdb_hash("") == 5381u);
    CHECK(qv::cdb_hash("127.0.0.1") == 0x5478120eu);
    // A byte >= 0x80 must not be sign-extended: h = (5381*33) ^ 0xff
    CHECK(qv::cdb_hash("\xff") == ((5381u * 33u) ^ 0xffu));
}

TEST_CASE("writer reproduces the reference's two-record file byte for byte", "[cdb]") {
    TempDir d;
    auto p = d / "two.cdb";
    auto size = make_cdb(p, {{"127.0.0.1", "+RELAYCLIENT=\0"s}, {"", "D\0"s}});
    std::string bytes = qvtest::slurp(p);
    REQUIRE(bytes.size() == 2121);
    CHECK(size == 2121);
    // Record 1 at 0x800, record 2 at 0x81f.
    CHECK(le32(bytes, 0x800) == 9);
    CHECK(le32(bytes, 0x804) == 14);
    CHECK(bytes.substr(0x808, 9) == "127.0.0.1");
    CHECK(le32(bytes, 0x81f) == 0);
    CHECK(le32(bytes, 0x823) == 2);
    // Tables 0..4 empty at 0x829; table 5 at 0x829 with 2 slots; table 14 at 0x839; the rest at 0x849.
    CHECK(le32(bytes, 0) == 0x829);
    CHECK(le32(bytes, 4) == 0);
    CHECK(le32(bytes, 5 * 8) == 0x829);
    CHECK(le32(bytes, 5 * 8 + 4) == 2);
    CHECK(bytes.substr(14 * 8, 8) == "\x39\x08\x00\x00\x02\x00\x00\x00"s);
    CHECK(le32(bytes, 255 * 8) == 0x849);
    // Table 5: slot 0 empty, slot 1 = (5381, 0x81f).
    CHECK(bytes.substr(0x829, 8) == std::string(8, '\0'));
    CHECK(le32(bytes, 0x831) == 5381);
    CHECK(le32(bytes, 0x835) == 0x81f);
}

TEST_CASE("reader finds keys with high bytes, empty keys and duplicates", "[cdb]") {
    TempDir d;
    auto p = d / "t.cdb";
    Records recs = {{"\xff\x80k\xe9", "high"}, {"", "empty-key"}, {"dup", "first"},       {"x", ""},
                    {"dup", "second"},         {"dup", "third"},  {"k\0z"s, "nul in key"}};
    make_cdb(p, recs);
    qv::CdbReader r(p);
    CHECK(r.find("\xff\x80k\xe9") == std::optional<std::string_view>("high"));
    CHECK(r.find("") == std::optional<std::string_view>("empty-key"));
    CHECK(r.find("dup") == std::optional<std::string_view>("first"));
    CHECK(r.find("x") == std::optional<std::string_view>(""));
    CHECK(r.find("k\0z"s) == std::optional<std::string_view>("nul in key"));
    CHECK_FALSE(r.find("k").has_value());
    CHECK_FALSE(r.find("\x7f\x80k\xe9").has_value());
    auto all = r.find_all("dup");
    REQUIRE(all.size() == 3);
    CHECK(all[0] == "first");
    CHECK(all[1] == "second");
    CHECK(all[2] == "third");
    CHECK(r.header_records() == recs.size());
    Records seen;
    r.for_each([&](std::string_view k, std::string_view v) { seen.emplace_back(k, v); });
    CHECK(seen == recs);
    CHECK_NOTHROW(r.verify());
}

TEST_CASE("an empty database is valid", "[cdb]") {
    TempDir d;
    auto p = d / "e.cdb";
    CHECK(make_cdb(p, {}) == 2048);
    qv::CdbReader r(p);
    CHECK(r.size() == 2048);
    CHECK(r.header_records() == 0);
    CHECK_FALSE(r.find("").has_value());
    CHECK_NOTHROW(r.verify());
}

TEST_CASE("counter predicts the writer's size", "[cdb]") {
    TempDir d;
    Records recs;
    for (int i = 0; i < 1000; ++i) recs.emplace_back("key" + std::to_string(i), std::string(i % 37, 'v'));
    qv::CdbCounter c;
    for (auto& [k, v] : recs) c.add(k, v);
    auto p = d / "c.cdb";
    make_cdb(p, recs);
    CHECK(c.records() == 1000);
    CHECK(c.bytes() == std::filesystem::file_size(p));
}

TEST_CASE("truncated and corrupt files are refused, never read past", "[cdb]") {
    TempDir d;
    auto good = d / "g.cdb";
    Records recs;
    for (int i = 0; i < 200; ++i) recs.emplace_back("k" + std::to_string(i), "v" + std::to_string(i));
    make_cdb(good, recs);
    std::string bytes = qvtest::slurp(good);

    SECTION("shorter than the header") {
        qvtest::write(d / "short.cdb", bytes.substr(0, 1000));
        try {
            qv::CdbReader r(d / "short.cdb");
            FAIL("opened a 1000-byte file");
        } catch (const qv::Error& e) {
            CHECK(e.code() == qv::Exit::dataerr);
            CHECK_THAT(e.what(), Catch::Contains("not a cdb"));
        }
    }
    SECTION("cut inside the hash tables") {
        qvtest::write(d / "cut.cdb", bytes.substr(0, bytes.size() - 100));
        CHECK_THROWS_AS(qv::CdbReader(d / "cut.cdb"), qv::Error);
    }
    SECTION("cut inside the records") {
        qvtest::write(d / "cut2.cdb", bytes.substr(0, 2100));
        CHECK_THROWS_AS(qv::CdbReader(d / "cut2.cdb"), qv::Error);
    }
    SECTION("a record length pointing past the data") {
        std::string bad = bytes;
        bad[2048 + 4] = '\x7f';  // first record's data length
        bad[2048 + 7] = '\x7f';
        qvtest::write(d / "len.cdb", bad);
        qv::CdbReader r(d / "len.cdb");
        CHECK_THROWS_AS(r.verify(), qv::Error);
        CHECK_THROWS_AS(r.for_each([](std::string_view, std::string_view) {}), qv::Error);
        // The lookup either fails cleanly or finds nothing; it never reads outside the map.
        try {
            (void)r.find("k0");
        } catch (const qv::Error& e) {
            CHECK(e.code() == qv::Exit::dataerr);
        }
    }
    SECTION("a hash slot pointing into the middle of a record") {
        std::string bad = bytes;
        // Find a used slot in the first non-empty table and shift its record position by one.
        for (unsigned t = 0; t < 256; ++t) {
            std::uint32_t pos = le32(bad, t * 8), len = le32(bad, t * 8 + 4);
            if (len == 0) continue;
            for (std::uint32_t s = 0; s < len; ++s)
                if (le32(bad, pos + s * 8 + 4) != 0) {
                    bad[pos + s * 8 + 4] = static_cast<char>(bad[pos + s * 8 + 4] + 1);
                    t = 256;
                    break;
                }
        }
        qvtest::write(d / "slot.cdb", bad);
        qv::CdbReader r(d / "slot.cdb");
        CHECK_THROWS_WITH(r.verify(), Catch::Contains("where no record starts"));
    }
}

TEST_CASE("a missing database is a missing input", "[cdb]") {
    TempDir d;
    try {
        qv::CdbReader r(d / "nope.cdb");
        FAIL("opened a missing file");
    } catch (const qv::Error& e) {
        CHECK(e.code() == qv::Exit::noinput);
        CHECK_THAT(e.what(), Catch::Contains("nope.cdb"));
    }
}

TEST_CASE("a current cdb stays open between lookups until it is replaced or its source is newer", "[cdb]") {
    TempDir dir;
    const auto db = dir / "vpasswd.cdb", text = dir / "vpasswd";
    qvtest::write(text, "joe:x\n");
    ::utimensat(AT_FDCWD, text.c_str(), std::array<timespec, 2>{{{1000, 0}, {1000, 0}}}.data(), 0);
    make_cdb(db, {{"joe", "one"}});
    auto a = qv::current_cdb(db, text);
    REQUIRE(a);
    CHECK(a->find("joe") == "one");
    CHECK(qv::current_cdb(db, text) == a);  // the same reader: nothing opened or mapped again

    make_cdb(db, {{"joe", "two"}});  // replaced (a new file renamed over it), as every writer does
    auto b = qv::current_cdb(db, text);
    REQUIRE(b);
    CHECK(b != a);
    CHECK(b->find("joe") == "two");
    CHECK(a->find("joe") == "one");  // a reader already handed out keeps its file

    qvtest::write(text, "joe:y\n");  // the source changed after its cdb: read the source instead
    ::utimensat(AT_FDCWD, text.c_str(), std::array<timespec, 2>{{{4000000000, 0}, {4000000000, 0}}}.data(), 0);
    CHECK_FALSE(qv::current_cdb(db, text));
    CHECK_FALSE(qv::current_cdb(dir / "missing.cdb", text));
}
