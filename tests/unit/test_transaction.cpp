#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "helpers.hpp"
#include "qvmail/error.hpp"
#include "qvmail/transaction.hpp"

using qvtest::TempDir;
namespace fs = std::filesystem;

TEST_CASE("a committed change replaces files, creates directories and removes trees", "[transaction]") {
    TempDir d;
    qvtest::write(d / "a", "old a\n");
    qvtest::write(d / "gone" / "inside", "x");
    {
        qv::FileTransaction tx;
        tx.make_dir(d / "new" / "deep", 0750);
        tx.write(d / "a", "new a\n");
        tx.write(d / "new" / "deep" / "b", "b\n", 0600);
        tx.remove(d / "gone");
        tx.commit();
    }
    CHECK(qvtest::slurp(d / "a") == "new a\n");
    CHECK(qvtest::slurp(d / "new" / "deep" / "b") == "b\n");
    CHECK((fs::status(d / "new" / "deep").permissions() & fs::perms::all) == fs::perms(0750));
    CHECK_FALSE(fs::exists(d / "gone"));
    CHECK(qvtest::listing(d.path()) == std::vector<std::string>{"a", "new"});  // no saved copies left
}

TEST_CASE("an abandoned change leaves nothing behind", "[transaction]") {
    TempDir d;
    qvtest::write(d / "a", "old a\n");
    {
        qv::FileTransaction tx;
        tx.make_dir(d / "new", 0755);
        tx.write(d / "new" / "b", "b\n");
        tx.write(d / "a", "new a\n");
    }
    CHECK(qvtest::slurp(d / "a") == "old a\n");
    CHECK(qvtest::listing(d.path()) == std::vector<std::string>{"a"});
}

TEST_CASE("a failure while publishing undoes the steps already taken", "[transaction]") {
    TempDir d;
    qvtest::write(d / "a", "old a\n");
    qvtest::write(d / "blocker" / "child", "x");  // a non-empty directory cannot be replaced by a file
    qv::FileTransaction tx;
    tx.make_dir(d / "made", 0755);
    tx.write(d / "a", "new a\n");
    tx.write(d / "fresh", "fresh\n");
    tx.remove(d / "made");
    tx.write(d / "blocker", "cannot land\n");
    CHECK_THROWS_AS(tx.publish(), qv::Error);
    CHECK(qvtest::slurp(d / "a") == "old a\n");
    CHECK_FALSE(fs::exists(d / "fresh"));
    tx.rollback();
    CHECK(qvtest::listing(d.path()) == std::vector<std::string>{"a", "blocker"});
}

TEST_CASE("undo after publish restores the old files", "[transaction]") {
    TempDir d;
    qvtest::write(d / "a", "old a\n");
    qv::FileTransaction tx;
    tx.write(d / "a", "new a\n");
    tx.remove(d / "nothing-there");
    tx.publish();
    CHECK(qvtest::slurp(d / "a") == "new a\n");
    tx.undo();
    CHECK(qvtest::slurp(d / "a") == "old a\n");
    tx.rollback();
    CHECK(qvtest::listing(d.path()) == std::vector<std::string>{"a"});
}

TEST_CASE("a dry run only describes", "[transaction]") {
    TempDir d;
    qv::FileTransaction tx(true);
    tx.make_dir(d / "x" / "y", 0755, qv::Owner{1, 1});
    tx.write(d / "x" / "y" / "f", "data");
    tx.remove(d / "z");
    CHECK_THROWS_AS(tx.stage(d / "cdb"), qv::Error);
    tx.commit();
    CHECK(qvtest::listing(d.path()).empty());
    REQUIRE(tx.log().size() == 4);
    CHECK(tx.log()[0] == "create directory " + (d / "x").string() + " (mode 0755, owner 1:1)");
    CHECK(tx.log()[2] == "write " + (d / "x" / "y" / "f").string());
}

TEST_CASE("a target can be staged once", "[transaction]") {
    TempDir d;
    qv::FileTransaction tx;
    tx.write(d / "a", "1");
    CHECK_THROWS_AS(tx.write(d / "a", "2"), qv::Error);
}

TEST_CASE("a job's content is published with the rest, and its failure stops the change", "[transaction]") {
    TempDir d;
    {
        qv::FileTransaction tx;
        tx.write(d / "a", "a\n");
        tx.stage_job(d / "b", 0640, [](qv::AtomicFile& f) { f.write("from a job\n"); });
        tx.commit();
    }
    CHECK(qvtest::slurp(d / "b") == "from a job\n");
    CHECK((fs::status(d / "b").permissions() & fs::perms::all) == fs::perms(0640));
    {
        qv::FileTransaction tx;
        tx.write(d / "a", "changed\n");
        tx.stage_job(d / "c", 0644, [](qv::AtomicFile&) { throw qv::Error(qv::Exit::dataerr, "bad source"); });
        CHECK_THROWS_WITH(tx.publish(), Catch::Contains("bad source"));
    }
    CHECK(qvtest::slurp(d / "a") == "a\n");
    CHECK(qvtest::listing(d.path()) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("moves go last, carry the change's writes inside them, and are undone first", "[transaction]") {
    TempDir d;
    qvtest::write(d / "dom" / "vpasswd", "old\n");
    qvtest::write(d / "link-target", "x");
    SECTION("committed: the new content is in the moved directory, and no saved copy is left") {
        qv::FileTransaction tx;
        tx.move(d / "dom", d / "renamed");  // registered first, done last
        tx.write(d / "dom" / "vpasswd", "new\n");
        tx.commit();
        CHECK(qvtest::slurp(d / "renamed" / "vpasswd") == "new\n");
        CHECK_FALSE(fs::exists(d / "dom"));
        CHECK(qvtest::listing(d / "renamed") == std::vector<std::string>{"vpasswd"});
        CHECK(tx.log() == std::vector<std::string>{"write " + (d / "dom" / "vpasswd").string(),
                                                   "move " + (d / "dom").string() + " -> " + (d / "renamed").string()});
    }
    SECTION("a move that fails undoes the moves and writes before it") {
        qvtest::write(d / "taken" / "x", "x");
        qv::FileTransaction tx;
        tx.write(d / "dom" / "vpasswd", "new\n");
        tx.move(d / "dom", d / "renamed");
        tx.move(d / "link-target", d / "taken");  // exists: RENAME_NOREPLACE refuses it
        CHECK_THROWS_AS(tx.publish(), qv::Error);
        tx.rollback();
        CHECK(qvtest::slurp(d / "dom" / "vpasswd") == "old\n");
        CHECK_FALSE(fs::exists(d / "renamed"));
        CHECK(qvtest::listing(d / "dom") == std::vector<std::string>{"vpasswd"});
    }
    SECTION("a link removed and made again in one change") {
        fs::create_symlink("dom", d / "alias");
        qv::FileTransaction tx;
        tx.remove(d / "alias");
        tx.symlink(d / "alias", "renamed");
        tx.move(d / "dom", d / "renamed");
        tx.commit();
        CHECK(fs::read_symlink(d / "alias") == "renamed");
        CHECK(qvtest::slurp(d / "alias" / "vpasswd") == "old\n");
    }
}
