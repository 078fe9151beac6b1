// vmoddomain - change a domain's unknown-user handler, delivery program or hash method. See vmoddomain(8).
#include <CLI/CLI.hpp>

#include "../commands.hpp"

#include "qvmail/address.hpp"
#include "qvmail/cli.hpp"
#include "qvmail/delivery_instruction.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"

namespace qv::cmd_vmoddomain {

namespace {

struct Args {
    std::string domain;
    std::optional<std::string> handler, hash;
    std::optional<int> vfilter;
};

int run(const Program& prog, const Args& a) {
    Reporter rep(prog.name, prog.common);
    if (!a.handler && !a.vfilter && !a.hash) throw Error(Exit::usage, "nothing to change: give -h, -f or -H");
    Paths paths = Paths::from_env();
    std::string name = normalize_domain(a.domain);
    auto lock = lock_for_change(paths, prog.common);
    auto store = open_store(paths, prog.mysql);
    Domain d = require_domain(paths, *store, name);
    std::optional<HashMethod> hash;
    if (a.hash) {
        hash = parse_hash_method(*a.hash);
        if (!hash) throw Error(Exit::usage, "unknown hash method '" + *a.hash + "' (MD5, SHA-256, SHA-512, YESCRYPT)");
    }
    QmailDefault delivery = d.delivery.value_or(QmailDefault{false, std::string(kDefaultHandler)});
    if (!d.delivery && (a.handler || a.vfilter))
        rep.warning(d.dir.string() + "/.qmail-default is missing or was edited by hand; writing a new one");
    if (a.handler) delivery.handler = parse_handler(*a.handler).text;
    if (a.vfilter) delivery.vfilter = *a.vfilter != 0;
    modify_domain(paths, *store, d, a.handler || a.vfilter ? std::optional(delivery) : std::nullopt, hash,
                  prog.common.dry_run);
    if (!prog.common.dry_run)
        audit(prog.name, "domain " + name + ": handler " + delivery.handler + ", program " +
                             (delivery.vfilter ? "vfilter" : "vdelivermail") +
                             (hash ? ", hash " + std::string(to_string(*hash)) : ""));
    if (rep.json()) {
        Json j = Json::object();
        j.set("domain", name).set("status", prog.common.dry_run ? "would-change" : "changed");
        j.set("handler", delivery.handler);
        j.set("program", delivery.vfilter ? "vfilter" : "vdelivermail");
        if (hash) j.set("hash", std::string(to_string(*hash)));
        rep.object(j);
    } else {
        rep.line(std::string(prog.common.dry_run ? "would set " : "") + name + ": " +
                 (delivery.vfilter ? "vfilter" : "vdelivermail") + " '' " + delivery.handler +
                 (hash ? ", hash " + std::string(to_string(*hash)) : ""));
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("vmoddomain");
    Args a;
    CLI::App app{"Change a virtual domain's unknown-user handler, its delivery program or its password hash method.",
                 "vmoddomain"};
    app.set_help_flag("--help", "Print this help message and exit");
    app.set_version_flag("--version", QV_VERSION);
    app.add_option("DOMAIN", a.domain, "The domain to change")->required();
    app.add_option("-h,--handler", a.handler,
                   "Unknown-user handler: bounce-no-mailbox, delete, /path/to/Maildir, user@domain or domain:host:port")
        ->type_name("HANDLER");
    app.add_option("-f,--vfilter", a.vfilter, "1: deliver through vfilter; 0: through vdelivermail")
        ->type_name("0|1")
        ->check(CLI::Range(0, 1));
    app.add_option("-H,--hash", a.hash, "Hash method for new passwords: MD5, SHA-256, SHA-512 or YESCRYPT")
        ->type_name("METHOD");
    add_common_options(app, prog.common, opt_json | opt_dry_run | opt_quiet | opt_verbose | opt_lock_wait);
    add_mysql_options(app, prog);
    app.footer(
        "Exit status: 0 changed; 64 usage; 65 bad handler or name; 68 no such domain; 69 the database cannot be\n"
        "reached; 73/74/77 the file cannot be written; 75 another command holds the lock. See vmoddomain(8).");
    app.callback([&] { prog.action = [&] { return run(prog, a); }; });
    prog.positional_completions[&app] = complete_domain_names;
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_vmoddomain
