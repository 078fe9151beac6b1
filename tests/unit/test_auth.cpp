#include <unistd.h>
#include <catch2/catch.hpp>

#include "helpers.hpp"
#include "qvmail/auth.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"
#include "qvmail/user.hpp"

using qvtest::TempDir;

TEST_CASE("checkpassword input: plain, IndiMail's CRAM variant, malformed", "[auth]") {
    using namespace std::string_literals;
    auto plain = qv::parse_checkpassword("joe@example.com\0secret\0001234\0"s);
    REQUIRE(plain);
    CHECK(plain->user == "joe@example.com");
    CHECK(plain->secret == "secret");
    CHECK(plain->response == "1234");
    CHECK_FALSE(plain->cram_md5);
    // qmail-smtpd's method field: 3 is CRAM-MD5, as a byte or a digit
    auto cram = qv::parse_checkpassword("tim\0<1.2@h>\0b913a602c7eda7a495b4e6e7334d3890\0\3\0"s);
    REQUIRE(cram);
    CHECK(cram->cram_md5);
    CHECK(qv::parse_checkpassword("tim\0<1.2@h>\0b913a602c7eda7a495b4e6e7334d3890\0003\0"s)->cram_md5);
    CHECK_FALSE(qv::parse_checkpassword("tim\0pw\0\0\2\0"s)->cram_md5);  // PLAIN
    // only the method says CRAM: not the shape of the fields (a password may hold NULs)
    CHECK_FALSE(qv::parse_checkpassword("tim\0<1.2@h>\0b913a602c7eda7a495b4e6e7334d3890\0"s)->cram_md5);
    CHECK_FALSE(qv::parse_checkpassword("tim\0<1.2@h>\0b913a602c7eda7a495b4e6e7334d3890\0\0"s)->cram_md5);
    CHECK_FALSE(qv::parse_checkpassword("tim\0<1.2@h>\0not-a-digest\0\3\0"s));  // CRAM without a digest
    CHECK_FALSE(qv::parse_checkpassword(""s));
    CHECK_FALSE(qv::parse_checkpassword("no-terminator"s));
    CHECK_FALSE(qv::parse_checkpassword("\0pw\0"s));  // empty user
    CHECK_FALSE(qv::parse_checkpassword("user-only\0"s));
}

TEST_CASE("CRAM-MD5 digest: the RFC 2195 test vector", "[auth]") {
    CHECK(qv::cram_md5_digest("tanstaaftanstaaf", "<1896.697170952@postoffice.reston.mci.net>") ==
          "b913a602c7eda7a495b4e6e7334d3890");
}

TEST_CASE("the dummy hashes are real hashes of each method", "[auth]") {
    for (auto m : {qv::HashMethod::md5, qv::HashMethod::sha256, qv::HashMethod::sha512, qv::HashMethod::yescrypt}) {
        INFO(qv::to_string(m));
        CHECK(qv::hash_method_of(qv::dummy_hash(m)) == m);
        CHECK(qv::verify_password("qvmail-dummy-not-a-password", qv::dummy_hash(m)));
    }
}

TEST_CASE("an unknown user costs a password verification, like a wrong password", "[auth]") {
    TempDir home;
    qv::Paths paths = qv::Paths::from(qv::Env({{"QMAILHOME", home.path().string()}}));
    std::filesystem::create_directories(paths.controldir);
    std::filesystem::create_directories(home / "etc");
    auto store = qv::make_files_store(paths);
    qv::AddDomainRequest dreq;
    dreq.name = "example.com";
    // root may not own a domain: as root, give it to nobody
    dreq.owner = ::getuid() == 0 ? qv::Owner{65534, 65534} : qv::Owner{::getuid(), ::getgid()};
    dreq.postmaster_passwd = qv::hash_password("pm-password", qv::HashMethod::sha512);
    qv::add_domain(paths, *store, dreq, false);
    qv::AddUserRequest ureq;
    ureq.address = qv::parse_address("tim@example.com");
    ureq.passwd = qv::hash_password("right-password", qv::HashMethod::sha512);
    ureq.scram = "{CRAM}right-password";
    qv::add_user(paths, *store, ureq, false);
    store = qv::make_files_store(paths);

    auto check = [&](const std::string& user, const std::string& pw, qv::AuthService s = qv::AuthService::smtp) {
        qv::AuthRequest r;
        r.user = user;
        r.secret = pw;
        return qv::authenticate(paths, *store, r, s);
    };
    std::uint64_t before = qv::dummy_verifications();
    CHECK(check("tim@example.com", "right-password").status == qv::AuthStatus::ok);
    CHECK(check("tim@example.com", "wrong").status == qv::AuthStatus::refused);
    CHECK(qv::dummy_verifications() == before);  // a real hash was verified both times

    auto r = check("nobody@example.com", "wrong");
    CHECK(r.status == qv::AuthStatus::refused);
    CHECK(r.reason == "no mailbox nobody@example.com");
    CHECK(qv::dummy_verifications() == before + 1);
    CHECK(check("tim@unknown.example", "right-password").status == qv::AuthStatus::refused);
    CHECK(check("not an address", "x").status == qv::AuthStatus::refused);
    CHECK(check("tim", "right-password").status == qv::AuthStatus::refused);  // no control/defaultdomain
    CHECK(qv::dummy_verifications() == before + 4);

    // control/defaultdomain completes a bare user name
    qvtest::write(paths.controldir / "defaultdomain", "example.com\n");
    CHECK(check("tim", "right-password").status == qv::AuthStatus::ok);

    // flags are looked at after the password, per service
    auto dom = qv::find_domain(paths, "example.com");
    REQUIRE(dom);
    auto u = *store->get_user(dom->ref(), "tim");
    u.gid_flags = qv::userflag::no_pop | qv::userflag::no_relay;
    qv::update_user(*store, *dom, u, false);
    store = qv::make_files_store(paths);
    CHECK(check("tim@example.com", "right-password", qv::AuthService::pop3).status == qv::AuthStatus::refused);
    CHECK(check("tim@example.com", "right-password", qv::AuthService::imap).status == qv::AuthStatus::ok);
    CHECK(check("tim@example.com", "right-password", qv::AuthService::smtp).status == qv::AuthStatus::no_relay);
    CHECK(check("tim@example.com", "wrong", qv::AuthService::imap).reason == "wrong password for tim@example.com");
}

TEST_CASE("service names: Dovecot's submission is SMTP; others are unknown", "[auth]") {
    CHECK(qv::parse_auth_service("submission") == qv::AuthService::smtp);
    CHECK(qv::parse_auth_service("pop") == qv::AuthService::pop3);
    CHECK_FALSE(qv::parse_auth_service("lmtp"));
    CHECK_FALSE(qv::parse_auth_service("IMAP"));
    CHECK_FALSE(qv::parse_auth_service(""));
}

TEST_CASE("a userdb lookup finds the mailbox without a password and gives Dovecot its fields", "[auth]") {
    TempDir home;
    qv::Paths paths = qv::Paths::from(qv::Env({{"QMAILHOME", home.path().string()}}));
    auto store = qv::make_files_store(paths);
    qv::AddDomainRequest dreq;
    dreq.name = "example.com";
    dreq.owner = qv::Owner{4321, 8765};
    if (::getuid() != 0) dreq.owner = qv::Owner{::getuid(), ::getgid()};
    dreq.postmaster_passwd = qv::hash_password("pm-password", qv::HashMethod::sha512);
    qv::add_domain(paths, *store, dreq, false);
    store = qv::make_files_store(paths);

    std::uint64_t before = qv::dummy_verifications();
    auto r = qv::lookup_mailbox(paths, *store, "postmaster@example.com");
    REQUIRE(r.status == qv::AuthStatus::ok);
    auto home_dir = r.user->dir;
    auto fields = qv::userdb_fields(r);
    using F = std::vector<std::pair<std::string, std::string>>;
    CHECK(fields == F{{"userdb_uid", std::to_string(dreq.owner.uid)},
                      {"userdb_gid", std::to_string(dreq.owner.gid)},
                      {"userdb_mail", "maildir:" + home_dir + "/Maildir"}});
    auto miss = qv::lookup_mailbox(paths, *store, "ghost@example.com");
    CHECK(miss.status == qv::AuthStatus::refused);
    CHECK(miss.reason == "no mailbox ghost@example.com");
    CHECK(qv::userdb_fields(miss).empty());
    CHECK(qv::dummy_verifications() == before);  // no password, nothing to hide the time of

    // a refused login gives no fields either (nothing of the mailbox leaks)
    qv::AuthRequest req;
    req.user = "postmaster@example.com";
    req.secret = "wrong";
    CHECK(qv::userdb_fields(qv::authenticate(paths, *store, req, qv::AuthService::imap)).empty());
    req.secret = "pm-password";
    CHECK(qv::userdb_fields(qv::authenticate(paths, *store, req, qv::AuthService::imap)) == fields);
}
