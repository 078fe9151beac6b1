#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "helpers.hpp"
#include "qvmail/error.hpp"
#include "qvmail/maildir.hpp"

using qvtest::TempDir;
namespace fs = std::filesystem;

namespace {

fs::path make_maildir(const fs::path& p) {
    for (const char* sub : {"tmp", "new", "cur"}) fs::create_directories(p / sub);
    return p;
}

// A message file opened for reading; closed at the end of the scope.
struct MessageFile {
    int fd = -1;
    MessageFile(const fs::path& p, const std::string& content) {
        qvtest::write(p, content);
        fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
    }
    ~MessageFile() { ::close(fd); }
};

// Delivers `body` (from offset 0) with `head` into `dir`, written and published with sync.
fs::path deliver(const fs::path& dir, const std::string& head, const std::string& body, const fs::path& scratch) {
    MessageFile m(scratch, body);
    qv::MaildirFile f = qv::maildir_write(dir, head, m.fd, 0, true);
    return qv::maildir_publish(f, true);
}

qv::Quota quota(std::string_view s) {
    auto q = qv::try_parse_quota(s);
    REQUIRE(q);
    return *q;
}

// <sec>.M<usec>P<pid>Q<n>.<host>, the host without '/' or ':'.
bool unique_name_form(std::string_view n) {
    auto digits = [&](std::size_t& i) {
        std::size_t start = i;
        while (i < n.size() && n[i] >= '0' && n[i] <= '9') ++i;
        return i > start;
    };
    std::size_t i = 0;
    for (char sep : {'.', 'M', 'P', 'Q', '.'}) {
        if (sep != 'M' && !digits(i)) return false;
        if (i >= n.size() || n[i] != sep) return false;
        ++i;
    }
    std::string_view host = n.substr(i);
    return !host.empty() && host.find_first_of("/:") == std::string_view::npos;
}

struct stat stat_of(const fs::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st;
}

}  // namespace

TEST_CASE("stored quota forms are read", "[maildir]") {
    auto q = quota("NOQUOTA");
    CHECK_FALSE(q.bytes);
    CHECK_FALSE(q.count);
    CHECK(qv::quota_unlimited(q));
    CHECK(qv::quota_unlimited(quota("noquota")));

    q = quota("1000000");
    CHECK(q.bytes == 1000000u);
    CHECK_FALSE(q.count);
    q = quota("1000000S");
    CHECK(q.bytes == 1000000u);
    CHECK_FALSE(q.count);
    q = quota("200C");
    CHECK_FALSE(q.bytes);
    CHECK(q.count == 200u);
    q = quota("1000000S,200C");
    CHECK(q.bytes == 1000000u);
    CHECK(q.count == 200u);
    q = quota("200C,1000000S");
    CHECK(q.bytes == 1000000u);
    CHECK(q.count == 200u);
    q = quota(" 1000000s,200c ");
    CHECK(q.bytes == 1000000u);
    CHECK(q.count == 200u);
    q = quota("1000000,200");
    CHECK(q.bytes == 1000000u);
    CHECK(q.count == 200u);
    CHECK(quota("18446744073709551615S").bytes == UINT64_MAX);

    CHECK(qv::quota_unlimited(quota("0S")));
    CHECK(qv::quota_unlimited(quota("0S,0C")));
    CHECK_FALSE(qv::quota_unlimited(quota("1S")));
    CHECK_FALSE(qv::quota_unlimited(quota("1C")));
}

TEST_CASE("malformed quotas are refused", "[maildir]") {
    for (const char* bad : {"", " ", "abc", "10M", "5k", "S", "C", "1000S,", ",200C", "-5", "+5", "5S,6S", "5C,6C",
                            "200C,5", "1000S,200C,3", "1000X", "18446744073709551616", "1 000", "NOQUOTA,5C"})
        CHECK_FALSE(qv::try_parse_quota(bad));
}

TEST_CASE("the maildirsize quota line", "[maildir]") {
    CHECK(qv::format_maildirsize_quota(quota("1000000S,200C")) == "1000000S,200C");
    CHECK(qv::format_maildirsize_quota(quota("200C,1000000S")) == "1000000S,200C");
    CHECK(qv::format_maildirsize_quota(quota("1000000")) == "1000000S");
    CHECK(qv::format_maildirsize_quota(quota("200C")) == "200C");
    CHECK(qv::format_maildirsize_quota(quota("NOQUOTA")) == "0S");
    CHECK(qv::format_maildirsize_quota(quota("0S,5C")) == "5C");
}

TEST_CASE("a delivery lands in new/ with the head and the body, nothing left in tmp/", "[maildir]") {
    TempDir d;
    fs::path md = make_maildir(d / "Maildir");
    std::string body = "XXXXXFrom: a@b\nSubject: hi\n\nhello\n";
    std::string head = "Return-Path: <a@b>\nDelivered-To: joe@example.com\n";
    MessageFile m(d / "msg", body);

    qv::MaildirFile f = qv::maildir_write(md, head, m.fd, 5, true);
    std::string want = head + body.substr(5);
    CHECK(f.dir == md);
    CHECK(f.size == want.size());
    CHECK(f.dev == stat_of(md).st_dev);
    CHECK(qvtest::listing(md / "tmp") == std::vector<std::string>{f.tmp_name});
    CHECK(qvtest::listing(md / "new").empty());
    CHECK(unique_name_form(f.tmp_name));
    CHECK(f.new_name == f.tmp_name + ",S=" + std::to_string(want.size()));

    fs::path p = qv::maildir_publish(f, true);
    CHECK(p == md / "new" / f.new_name);
    CHECK(qvtest::listing(md / "new") == std::vector<std::string>{f.new_name});
    CHECK(qvtest::listing(md / "tmp").empty());
    CHECK(qvtest::slurp(p) == want);
    CHECK(stat_of(p).st_size == static_cast<off_t>(want.size()));
    // the descriptor's own position was not used or moved
    CHECK(::lseek(m.fd, 0, SEEK_CUR) == 0);
}

TEST_CASE("large bodies, bodies from a pipe, and no body at all", "[maildir]") {
    TempDir d;
    fs::path md = make_maildir(d / "Maildir");

    std::string big;
    for (int i = 0; big.size() < 700 * 1024; ++i) big += "line " + std::to_string(i) + " of a long message\n";
    fs::path p = deliver(md, "Delivered-To: x@y\n", big, d / "big");
    CHECK(qvtest::slurp(p) == "Delivered-To: x@y\n" + big);

    int pfd[2];
    REQUIRE(::pipe(pfd) == 0);
    std::string small = "Subject: piped\n\nbody\n";
    REQUIRE(::write(pfd[1], small.data(), small.size()) == static_cast<ssize_t>(small.size()));
    ::close(pfd[1]);
    qv::MaildirFile f = qv::maildir_write(md, "H: 1\n", pfd[0], 0, false);
    ::close(pfd[0]);
    CHECK(qvtest::slurp(qv::maildir_publish(f, false)) == "H: 1\n" + small);

    qv::MaildirFile h = qv::maildir_write(md, "Only: head\n", -1, 0, false);
    CHECK(h.size == 11);
    CHECK(qvtest::slurp(qv::maildir_publish(h, false)) == "Only: head\n");
    CHECK(qvtest::listing(md / "tmp").empty());
    CHECK(qvtest::listing(md / "new").size() == 3);
}

TEST_CASE("every delivery gets its own name, from many threads at once", "[maildir]") {
    TempDir d;
    fs::path md = make_maildir(d / "Maildir");
    MessageFile m(d / "msg", "Subject: x\n\nbody\n");

    qv::MaildirFile a = qv::maildir_write(md, "", m.fd, 0, false);
    qv::MaildirFile b = qv::maildir_write(md, "", m.fd, 0, false);
    CHECK(a.tmp_name != b.tmp_name);
    qv::maildir_publish(a, false);
    qv::maildir_publish(b, false);
    CHECK(a.new_name != b.new_name);

    constexpr int kThreads = 8, kEach = 25;
    std::vector<std::thread> threads;
    std::vector<std::vector<std::string>> names(kThreads);
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                qv::MaildirFile f = qv::maildir_write(md, "T: " + std::to_string(t) + "\n", m.fd, 0, false);
                names[t].push_back(qv::maildir_publish(f, false).filename().string());
            }
        });
    for (auto& th : threads) th.join();
    std::set<std::string> all;
    for (auto& v : names) all.insert(v.begin(), v.end());
    CHECK(all.size() == kThreads * kEach);
    CHECK(qvtest::listing(md / "new").size() == kThreads * kEach + 2);
    CHECK(qvtest::listing(md / "tmp").empty());
    for (auto& n : all) CHECK(qvtest::slurp(md / "new" / n).find("Subject: x\n\nbody\n") != std::string::npos);
}

TEST_CASE("a name taken in new/ makes publish pick another", "[maildir]") {
    TempDir d;
    fs::path md = make_maildir(d / "Maildir");
    qv::MaildirFile f = qv::maildir_write(md, "mine\n", -1, 0, false);
    std::string first = f.new_name;
    qvtest::write(md / "new" / first, "someone else's\n");
    fs::path p = qv::maildir_publish(f, true);
    CHECK(f.new_name != first);
    CHECK(p.filename() == f.new_name);
    CHECK(qvtest::slurp(md / "new" / first) == "someone else's\n");
    CHECK(qvtest::slurp(p) == "mine\n");
    CHECK(qvtest::listing(md / "tmp").empty());
}

TEST_CASE("maildir_discard leaves nothing; a failed write leaves nothing", "[maildir]") {
    TempDir d;
    fs::path md = make_maildir(d / "Maildir");
    MessageFile m(d / "msg", "Subject: x\n\nbody\n");
    qv::MaildirFile f = qv::maildir_write(md, "H: x\n", m.fd, 0, false);
    REQUIRE(qvtest::listing(md / "tmp").size() == 1);
    qv::maildir_discard(f);
    CHECK(qvtest::listing(md / "tmp").empty());
    CHECK(qvtest::listing(md / "new").empty());
    qv::maildir_discard(f);  // twice: still quiet

    fs::create_directories(d / "notmaildir");
    try {
        qv::maildir_write(d / "notmaildir", "H: x\n", m.fd, 0, false);
        FAIL("expected an error");
    } catch (const qv::MaildirError& e) {
        CHECK(e.code() == qv::Exit::cantcreat);
        CHECK(e.errnum() == ENOENT);
        CHECK(std::string(e.what()).find("notmaildir/tmp/") != std::string::npos);
    }
    CHECK(qvtest::listing(d / "notmaildir").empty());

    // a descriptor that cannot be read: the tmp file goes again
    int wfd = ::open((d / "wo").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    REQUIRE(wfd >= 0);
    CHECK_THROWS_AS(qv::maildir_write(md, "H: x\n", wfd, 0, false), qv::MaildirError);
    ::close(wfd);
    CHECK(qvtest::listing(md / "tmp").empty());
}

TEST_CASE("is_maildir", "[maildir]") {
    TempDir d;
    CHECK_FALSE(qv::is_maildir(d / "none"));
    fs::create_directories(d / "part" / "new");
    fs::create_directories(d / "part" / "cur");
    CHECK_FALSE(qv::is_maildir(d / "part"));
    qvtest::write(d / "part" / "tmp", "a file\n");
    CHECK_FALSE(qv::is_maildir(d / "part"));
    CHECK(qv::is_maildir(make_maildir(d / "Maildir")));
    qvtest::write(d / "file", "x");
    CHECK_FALSE(qv::is_maildir(d / "file"));
}

TEST_CASE("a folder delivery creates .Folder with tmp, new, cur and maildirfolder", "[maildir]") {
    TempDir d;
    fs::path md = make_maildir(d / "Maildir");
    ::chmod(md.c_str(), 0750);

    CHECK(qv::maildir_folder(md, "") == md);
    CHECK(qv::maildir_folder(md, "INBOX") == md);
    CHECK(qv::maildir_folder(md, "inbox") == md);

    fs::path work = qv::maildir_folder(md, "Work");
    CHECK(work == md / ".Work");
    CHECK(qv::is_maildir(work));
    CHECK(fs::is_regular_file(work / "maildirfolder"));
    CHECK(fs::file_size(work / "maildirfolder") == 0);
    CHECK((stat_of(work).st_mode & 07777) == 0750);
    CHECK((stat_of(work / "new").st_mode & 07777) == 0750);
    CHECK(qv::maildir_folder(md, ".Work") == work);       // leading dot given: the same folder
    CHECK(qv::maildir_folder(md, "INBOX.Work") == work);  // IMAP's name for it
    CHECK(qv::maildir_folder(md, "Work.Sub", false) == md / ".Work.Sub");
    CHECK(qv::is_maildir(md / ".Work.Sub"));

    fs::path p = deliver(work, "H: f\n", "Subject: in a folder\n\nx\n", d / "msg");
    CHECK(p.parent_path() == work / "new");
    CHECK(qvtest::listing(md / "new").empty());

    // a half-made folder (no cur/) is completed
    fs::create_directories(md / ".Half" / "new");
    CHECK(qv::is_maildir(qv::maildir_folder(md, "Half")));

    for (const char* bad : {"a/b", "..x", "x.", "x..y", ".", "../x"}) {
        if (std::string_view(bad) == ".") continue;  // "." is the Maildir itself
        try {
            qv::maildir_folder(md, bad);
            FAIL(bad);
        } catch (const qv::Error& e) {
            CHECK(e.code() == qv::Exit::dataerr);
        }
    }
    CHECK_THROWS_AS(qv::maildir_folder(md, std::string(300, 'a')), qv::Error);
    CHECK_THROWS_AS(qv::maildir_folder(md, std::string("a\0b", 3)), qv::Error);
}

TEST_CASE("maildirsize is created, added to, and recalculated", "[maildir]") {
    TempDir d;
    fs::path md = make_maildir(d / "Maildir");
    deliver(md, "", std::string(100, 'a'), d / "m1");
    deliver(md, "", std::string(200, 'b'), d / "m2");
    fs::path work = qv::maildir_folder(md, "Work");
    deliver(work, "", std::string(300, 'c'), d / "m3");
    qvtest::write(md / "cur" / "1700000000.abc.host:2,S", std::string(50, 'd'));  // no S=: stat'ed
    qvtest::write(md / "cur" / ".hidden", std::string(999, 'e'));                 // not a message
    qvtest::write(md / "tmp" / "1700000000.tmp.host", std::string(999, 'f'));     // not delivered
    const std::uint64_t bytes = 100 + 200 + 300 + 50;

    auto q = quota("1000000S,200C");
    auto use = qv::maildir_usage(md, q);
    CHECK(use.bytes == bytes);
    CHECK(use.count == 4);
    CHECK(qvtest::slurp(md / "maildirsize") == "1000000S,200C\n" + std::to_string(bytes) + " 4\n");

    // added to: later reads sum the lines, without counting the files again
    qv::maildirsize_add(md, 1234, 1);
    qv::maildirsize_add(md, -100, -1);
    CHECK(qvtest::slurp(md / "maildirsize") == "1000000S,200C\n" + std::to_string(bytes) + " 4\n1234 1\n-100 -1\n");
    use = qv::maildir_usage(md, q);
    CHECK(use.bytes == bytes + 1134);
    CHECK(use.count == 4);

    // the quota changed: counted again, the new quota line written
    auto q2 = quota("2000000S");
    use = qv::maildir_usage(md, q2);
    CHECK(use.bytes == bytes);
    CHECK(use.count == 4);
    CHECK(qvtest::slurp(md / "maildirsize") == "2000000S\n" + std::to_string(bytes) + " 4\n");

    // the same quota written another way is the same quota
    qvtest::write(md / "maildirsize", "2000000s\n7 7\n");
    CHECK(qv::maildir_usage(md, q2).bytes == 7);

    // grown to 5120 bytes: counted again
    std::string lines = "2000000S\n";
    while (lines.size() < 5120) lines += "1 0\n";
    qvtest::write(md / "maildirsize", lines);
    use = qv::maildir_usage(md, q2);
    CHECK(use.bytes == bytes);
    CHECK(qvtest::slurp(md / "maildirsize") == "2000000S\n" + std::to_string(bytes) + " 4\n");
    // just under the limit: read as it is
    lines = "2000000S\n";
    while (lines.size() + 4 < 5120) lines += "1 0\n";
    qvtest::write(md / "maildirsize", lines);
    CHECK(qv::maildir_usage(md, q2).bytes == (lines.size() - 9) / 4);

    // malformed, or summing below zero: counted again
    qvtest::write(md / "maildirsize", "2000000S\n5 x\n");
    CHECK(qv::maildir_usage(md, q2).bytes == bytes);
    qvtest::write(md / "maildirsize", "2000000S\n5 1\n-10 -2\n");
    CHECK(qv::maildir_usage(md, q2).count == 4);

    // forced
    qvtest::write(md / "maildirsize", "2000000S\n5 1\n");
    CHECK(qv::maildir_usage(md, q2).bytes == 5);
    CHECK(qv::maildir_usage(md, q2, true).bytes == bytes);
    CHECK(qvtest::listing(md) == std::vector<std::string>{".Work", "cur", "maildirsize", "new", "tmp"});
}

TEST_CASE("no maildirsize is made for an unlimited quota, and adding to a missing one does nothing", "[maildir]") {
    TempDir d;
    fs::path md = make_maildir(d / "Maildir");
    deliver(md, "", std::string(100, 'a'), d / "m1");
    auto use = qv::maildir_usage(md, quota("NOQUOTA"));
    CHECK(use.bytes == 100);
    CHECK(use.count == 1);
    CHECK_FALSE(fs::exists(md / "maildirsize"));
    qv::maildirsize_add(md, 100, 1);
    CHECK_FALSE(fs::exists(md / "maildirsize"));

    // an existing one with a stale limit is brought in line ("0S": no limit)
    qvtest::write(md / "maildirsize", "5000S\n100 1\n");
    use = qv::maildir_usage(md, quota("NOQUOTA"));
    CHECK(use.bytes == 100);
    CHECK(qvtest::slurp(md / "maildirsize") == "0S\n100 1\n");
}

TEST_CASE("maildirsize keeps the Maildir's owner when written by root", "[maildir]") {
    if (::geteuid() != 0) return;
    TempDir d;
    fs::path md = make_maildir(d / "Maildir");
    REQUIRE(::chown(md.c_str(), 1, 2) == 0);
    qv::maildir_usage(md, quota("1000S"));
    CHECK(stat_of(md / "maildirsize").st_uid == 1);
    CHECK(stat_of(md / "maildirsize").st_gid == 2);
    fs::path work = qv::maildir_folder(md, "Work");
    for (const char* p : {"", "maildirfolder", "tmp", "new", "cur"}) {
        CHECK(stat_of(work / p).st_uid == 1);
        CHECK(stat_of(work / p).st_gid == 2);
    }
    qv::MaildirFile f = qv::maildir_write(work, "H: x\n", -1, 0, false, qv::Owner{3, 4});
    fs::path p = qv::maildir_publish(f, false);
    CHECK(stat_of(p).st_uid == 3);
    CHECK(stat_of(p).st_gid == 4);
}

TEST_CASE("fits_quota at the edges", "[maildir]") {
    auto q = quota("1000S,3C");
    CHECK(qv::fits_quota(q, {0, 0}, 1000));
    CHECK_FALSE(qv::fits_quota(q, {0, 0}, 1001));
    CHECK(qv::fits_quota(q, {900, 2}, 100));
    CHECK_FALSE(qv::fits_quota(q, {900, 2}, 101));
    CHECK_FALSE(qv::fits_quota(q, {900, 3}, 1));   // the count is full
    CHECK_FALSE(qv::fits_quota(q, {1500, 0}, 0));  // already over
    CHECK(qv::fits_quota(q, {1000, 0}, 0));
    CHECK(qv::fits_quota(quota("1000S"), {0, 1000000}, 10));
    CHECK(qv::fits_quota(quota("3C"), {UINT64_MAX, 2}, UINT64_MAX));
    CHECK_FALSE(qv::fits_quota(quota("3C"), {0, 3}, 0));
    CHECK(qv::fits_quota(quota("NOQUOTA"), {UINT64_MAX, UINT64_MAX}, UINT64_MAX));
    CHECK(qv::fits_quota(quota("0S"), {UINT64_MAX, 0}, 1));
    CHECK(qv::fits_quota(quota("18446744073709551615S"), {UINT64_MAX - 10, 0}, 10));
    CHECK_FALSE(qv::fits_quota(quota("18446744073709551615S"), {UINT64_MAX - 10, 0}, 11));
}

TEST_CASE("has_delivered_to looks in the header only", "[maildir]") {
    TempDir d;
    std::string msg =
        "Received: from x\n"
        "Delivered-To: Joe@Example.COM \n"
        "delivered-to:other@example.com\n"
        "X-Folded: a\n"
        "  Delivered-To: folded@example.com\n"
        "Subject: hi\n"
        "\n"
        "Delivered-To: body@example.com\n";
    MessageFile m(d / "msg", msg);
    CHECK(qv::has_delivered_to(m.fd, 0, "joe@example.com"));
    CHECK(qv::has_delivered_to(m.fd, 0, "  JOE@example.com "));
    CHECK(qv::has_delivered_to(m.fd, 0, "other@example.com"));
    CHECK_FALSE(qv::has_delivered_to(m.fd, 0, "body@example.com"));
    CHECK_FALSE(qv::has_delivered_to(m.fd, 0, "folded@example.com"));
    CHECK_FALSE(qv::has_delivered_to(m.fd, 0, "joe@example.co"));
    CHECK_FALSE(qv::has_delivered_to(m.fd, 0, "nobody@example.com"));

    // from an offset (a queue file's own lines before the message), CRLF, and the last line without a newline
    MessageFile c(d / "crlf", "garbage line\nDelivered-To: a@b\r\nSubject: x\r\n\r\nDelivered-To: c@d\r\n");
    CHECK(qv::has_delivered_to(c.fd, 13, "a@b"));
    CHECK_FALSE(qv::has_delivered_to(c.fd, 13, "c@d"));
    CHECK_FALSE(qv::has_delivered_to(c.fd, 0, "a@b"));  // "garbage line" is no field: the body starts there
    MessageFile e(d / "end", "Subject: x\nDelivered-To: e@f");
    CHECK(qv::has_delivered_to(e.fd, 0, "e@f"));
    MessageFile empty(d / "empty", "");
    CHECK_FALSE(qv::has_delivered_to(empty.fd, 0, "e@f"));
    MessageFile nohead(d / "nohead", "\nDelivered-To: e@f\n");
    CHECK_FALSE(qv::has_delivered_to(nohead.fd, 0, "e@f"));
    CHECK(::lseek(m.fd, 0, SEEK_CUR) == 0);

    // only the first 64 KiB of header are read
    std::string longhead;
    while (longhead.size() < 70 * 1024) longhead += "X-Filler: 0123456789012345678901234567890123456789\n";
    MessageFile l(d / "long", "Delivered-To: early@x\n" + longhead + "Delivered-To: late@x\n\nbody\n");
    CHECK(qv::has_delivered_to(l.fd, 0, "early@x"));
    CHECK_FALSE(qv::has_delivered_to(l.fd, 0, "late@x"));

    int pfd[2];
    REQUIRE(::pipe(pfd) == 0);
    CHECK_THROWS_AS(qv::has_delivered_to(pfd[0], 0, "a@b"), qv::MaildirError);
    ::close(pfd[0]);
    ::close(pfd[1]);
}
