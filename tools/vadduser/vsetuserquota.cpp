// vsetuserquota - set a mailbox's quota (IndiMail's command). See vsetuserquota(8).
#include <CLI/CLI.hpp>

#include "../commands.hpp"

#include "qvmail/address.hpp"
#include "qvmail/cli.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/maildir.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"
#include "qvmail/user.hpp"

namespace qv::cmd_vsetuserquota {

namespace {

int run(const Program& prog, const std::string& address, const std::string& quota_text) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    Address a = parse_address(address);
    std::string quota = normalize_quota(quota_text);
    auto lock = lock_for_change(paths, prog.common);
    auto store = open_store(paths, prog.mysql);
    Domain d = require_domain(paths, *store, a.domain);
    UserRecord u = require_user(*store, d, a.local);
    const std::string before = u.quota;
    u.quota = quota;
    update_user(*store, d, u, prog.common.dry_run);
    // maildirsize counted again under the new quota line (as IndiMail's setuserquota does), so that
    // deliveries and IMAP servers see the new limit at once
    MaildirUsage use{};
    const std::filesystem::path maildir = std::filesystem::path(u.dir) / "Maildir";
    std::error_code ec;
    if (std::filesystem::is_directory(maildir, ec)) {
        if (prog.common.dry_run) {
            use = maildir_usage(maildir);
        } else {
            auto q = try_parse_quota(quota);  // normalize_quota's text always reads back
            use = q ? maildir_usage(maildir, *q, true) : maildir_usage(maildir);
        }
    }
    if (!prog.common.dry_run) audit(prog.name, "quota of " + a.str() + ": " + before + " -> " + quota);
    if (rep.json()) {
        Json j = Json::object();
        j.set("address", a.str())
            .set("status", prog.common.dry_run ? "would-change" : "changed")
            .set("quota", quota)
            .set("usage_bytes", use.bytes)
            .set("usage_count", use.count);
        rep.object(j);
        return 0;
    }
    if (prog.common.dry_run) rep.line("would set the quota of " + a.str() + " to " + quota + " (now " + before + ")");
    rep.line("usage " + std::to_string(use.bytes) + " bytes");  // IndiMail's line
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("vsetuserquota");
    std::string address, quota;
    CLI::App app{"Set a mailbox's quota and count its Maildir again under it; prints the usage in bytes.",
                 "vsetuserquota"};
    app.set_version_flag("--version", QV_VERSION);
    app.add_option("ADDRESS", address, "The mailbox: user@domain")->required();
    app.add_option("QUOTA", quota, "NOQUOTA, bytes (k/m/g suffixes), or size,count (e.g. 100M,5000)")->required();
    add_common_options(app, prog.common, opt_json | opt_dry_run | opt_quiet | opt_verbose | opt_lock_wait);
    add_mysql_options(app, prog);
    app.footer(
        "The same change as vmoduser -q, in IndiMail's form. Exit status: 0 set; 64 usage; 65 bad address or\n"
        "quota; 67 no such mailbox; 68 no such domain; 69 the database is down; 73/74/77 files cannot be\n"
        "changed; 75 another command holds the lock. See vsetuserquota(8).");
    app.callback([&] { prog.action = [&] { return run(prog, address, quota); }; });
    prog.positional_completions[&app] = complete_addresses;
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_vsetuserquota
