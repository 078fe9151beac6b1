#include <unistd.h>
#include <catch2/catch.hpp>

#include "helpers.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/password.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/recipient.hpp"
#include "qvmail/store.hpp"
#include "qvmail/user.hpp"

TEST_CASE("which addresses of a virtual domain take mail, as delivery decides", "[recipient]") {
    qvtest::TempDir home;
    qv::Paths paths = qv::Paths::from(qv::Env({{"QMAILHOME", home.path().string()}}));
    auto store = qv::make_files_store(paths);
    qv::AddDomainRequest dreq;
    dreq.name = "example.com";
    dreq.owner = ::getuid() == 0 ? qv::Owner{65534, 65534} : qv::Owner{::getuid(), ::getgid()};
    dreq.postmaster_passwd = qv::hash_password("pm", qv::HashMethod::md5);
    qv::add_domain(paths, *store, dreq, false);
    qv::AddUserRequest u;
    u.address = qv::parse_address("joe@example.com");
    u.passwd = qv::hash_password("pw", qv::HashMethod::md5);
    qv::add_user(paths, *store, u, false);
    store = qv::make_files_store(paths);
    auto kind = [&](std::string_view local, bool ext = false) {
        auto r = qv::resolve_virtual_recipient(paths, [&]() -> qv::Store& { return *store; }, local, "Example.COM", ext);
        REQUIRE(r);
        return r->kind;
    };
    CHECK(kind("joe") == qv::VirtualRecipient::mailbox);
    CHECK(kind("JOE") == qv::VirtualRecipient::mailbox);
    CHECK(kind("postmaster") == qv::VirtualRecipient::mailbox);
    CHECK(kind("") == qv::VirtualRecipient::mailbox);  // an empty local part is the postmaster
    CHECK(kind("abuse") == qv::VirtualRecipient::alias);
    CHECK(kind("nobody") == qv::VirtualRecipient::nobody);  // bounce-no-mailbox
    CHECK(kind("joe-list") == qv::VirtualRecipient::nobody);
    CHECK(kind("joe-list", true) == qv::VirtualRecipient::mailbox);  // QMAIL_EXT
    CHECK(kind("../vpasswd") == qv::VirtualRecipient::nobody);       // never a path
    qvtest::write(home / "domains/example.com/.qmail-list-default", "&joe@example.com\n");
    CHECK(kind("list-a-b") == qv::VirtualRecipient::alias);
    CHECK(kind(std::string(300, 'x')) == qv::VirtualRecipient::nobody);  // too long for a file: no alias
    CHECK(kind("list-" + std::string(300, 'x')) == qv::VirtualRecipient::alias);
    std::string dashes = "nobody";
    for (int i = 0; i < 40; ++i) dashes += "-x";
    CHECK(kind(dashes) == qv::VirtualRecipient::handler);  // more than are looked up: taken
    bool opened = false;
    CHECK_FALSE(qv::resolve_virtual_recipient(
        paths, [&]() -> qv::Store& { opened = true; return *store; }, "joe", "other.example"));
    CHECK_FALSE(opened);  // mail for another domain never opens the store
    auto d = qv::require_domain(paths, "example.com");
    qv::modify_domain(paths, *store, d, qv::QmailDefault{false, "delete"}, std::nullopt, false);
    CHECK(kind("nobody") == qv::VirtualRecipient::handler);
    qvtest::write(home / "domains/example.com/.qmail-default", "| /usr/bin/something-else\n");
    CHECK(kind("nobody") == qv::VirtualRecipient::handler);  // a line qvmail did not write: it may take it
    ::unlink((home / "domains/example.com/.qmail-default").c_str());
    CHECK(kind("nobody") == qv::VirtualRecipient::nobody);   // no .qmail-default: qmail-local bounces
}
