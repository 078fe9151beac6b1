// vdominfo - show virtual domains. See vdominfo(8).
#include <CLI/CLI.hpp>

#include "../commands.hpp"

#include "qvmail/address.hpp"
#include "qvmail/cli.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/domain_limits.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"

namespace qv::cmd_vdominfo {

namespace {

struct Fields {
    bool name = false, uid = false, gid = false, dir = false, base = false, users = false, all = false;
    bool any() const { return name || uid || gid || dir || base || users; }
};

std::string label(const char* l, const std::string& v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%10s: ", l);
    return buf + v;
}

void show(const Reporter& rep, const Paths& paths, Store& store, const Domain& d, const Fields& f) {
    std::size_t users = store.users(d.ref()).size();
    std::string hash(to_string(domain_hash_method(paths, d)));
    std::string handler = d.delivery ? d.delivery->handler : "(.qmail-default missing or hand-made)";
    std::string program = d.delivery ? (d.delivery->vfilter ? "vfilter" : "vdelivermail") : "?";
    if (rep.json()) {
        Json j = Json::object();
        j.set("domain", d.alias.empty() ? d.name : d.alias)
            .set("alias_of", d.alias.empty() ? Json() : Json(d.name))
            .set("alias_domains", alias_domains(d))
            .set("uid", d.owner.uid)
            .set("gid", d.owner.gid)
            .set("dir", d.dir.string())
            .set("base_path", d.base_path.string())
            .set("hash", hash)
            .set("users", users);
        j.set("handler", d.delivery ? Json(d.delivery->handler) : Json());
        j.set("program", d.delivery ? Json(program) : Json());
        j.set("aliases", store.aliases(d.ref()));
        DomainLimits limits = read_domain_limits(d);
        j.set("vlimits", limits.any());
        j.set("default_quota", default_mailbox_quota_of(limits));
        j.set("store", std::string(store.backend()));
        rep.object(j);
        return;
    }
    bool all = f.all || !f.any();
    if (!d.alias.empty()) rep.line("---- Domain " + d.alias + " is an alias domain of " + d.name);
    if (all) {
        std::string head = "---- Domain " + d.name;
        if (d.name.size() < 25) head += std::string(25 - d.name.size(), ' ');
        rep.line(head + " " + std::string(31, '-'));
    } else {
        rep.line("---- Domain " + d.name + " " + std::string(16, '-'));
    }
    if (all || f.name) rep.line(label("domain", d.name));
    if (all || f.uid) rep.line(label("uid", std::to_string(d.owner.uid)));
    if (all || f.gid) rep.line(label("gid", std::to_string(d.owner.gid)));
    if (all || f.dir) rep.line(label("Domain Dir", d.dir.string()));
    if (all || f.base) rep.line(label("Base Dir", d.base_path.string()));
    if (all) rep.line(label("crypt Hash", hash));
    if (all || f.users) rep.line(label("Users", std::to_string(users)));
    if (all || f.users) {
        DomainLimits limits = read_domain_limits(d);
        rep.line(label("vlimits", limits.any() ? "enabled (default quota " + default_mailbox_quota_of(limits) + ")"
                                               : std::string("disabled")));
    }
    if (all) {
        rep.line(label("Handler", handler));
        rep.line(label("Program", program));
        rep.line(label("Store", std::string(store.backend())));
        std::string aliases;
        for (auto& a : store.aliases(d.ref())) aliases += (aliases.empty() ? "" : " ") + a;
        rep.line(label("Aliases", aliases));
        std::string domains;
        for (auto& a : alias_domains(d)) domains += (domains.empty() ? "" : " ") + a;
        rep.line(label("Alias dom.", domains));
    }
}

int run(const Program& prog, const std::optional<std::string>& domain, const Fields& f) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    auto store = open_store(paths, prog.mysql);
    if (domain) {
        show(rep, paths, *store, require_domain(paths, *store, normalize_domain(*domain)), f);
        return 0;
    }
    for (auto& d : list_domains(paths)) show(rep, paths, *store, d, f);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("vdominfo");
    std::optional<std::string> domain;
    Fields f;
    CLI::App app{"Show a virtual domain (or all of them): owner, directories, hash method, mailboxes, handler.",
                 "vdominfo"};
    app.set_version_flag("--version", QV_VERSION);
    app.add_option("DOMAIN", domain, "The domain to show (default: every domain)");
    app.add_flag("-a,--all", f.all, "Every field (the default)");
    app.add_flag("-n,--name", f.name, "The domain name");
    app.add_flag("-u,--uid", f.uid, "The domain's uid");
    app.add_flag("-g,--gid", f.gid, "The domain's gid");
    app.add_flag("-d,--dir", f.dir, "The domain directory");
    app.add_flag("-b,--base-dir", f.base, "Where its mailboxes live");
    app.add_flag("-t,--users", f.users, "The number of mailboxes");
    add_common_options(app, prog.common, opt_json);
    add_mysql_options(app, prog);
    app.footer("Exit status: 0 shown; 64 usage; 65 bad name; 68 no such domain. See vdominfo(8).");
    app.callback([&] { prog.action = [&] { return run(prog, domain, f); }; });
    prog.positional_completions[&app] = complete_domain_names;
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_vdominfo
