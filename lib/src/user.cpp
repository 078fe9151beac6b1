#include "qvmail/user.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include <algorithm>
#include <charconv>

#include "qvmail/alias.hpp"
#include "qvmail/domain_limits.hpp"
#include "qvmail/domain_sync.hpp"
#include "qvmail/error.hpp"
#include "qvmail/maildir.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/process.hpp"
#include "qvmail/transaction.hpp"

namespace qv {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void bad_quota(std::string_view t) {
    throw Error(Exit::dataerr, "invalid quota '" + printable(t) +
                                   "': expected NOQUOTA, a size such as 500M, or size,count such as 500M,10000");
}

std::uint64_t parse_size(std::string_view t, std::string_view whole) {
    if (t.empty()) bad_quota(whole);
    std::uint64_t mult = 1;
    switch (t.back()) {
        case 'k':
        case 'K':
            mult = 1024;
            break;
        case 'm':
        case 'M':
            mult = 1024 * 1024;
            break;
        case 'g':
        case 'G':
            mult = 1024 * 1024 * 1024;
            break;
        case 'S':
        case 's':
        case 'C':
        case 'c':
            break;  // IndiMail's stored suffixes
        default:
            mult = 0;
    }
    if (mult != 0 && (t.back() < '0' || t.back() > '9')) t.remove_suffix(1);
    if (mult == 0) mult = 1;
    std::uint64_t v = 0;
    auto r = std::from_chars(t.data(), t.data() + t.size(), v);
    if (r.ec != std::errc() || r.ptr != t.data() + t.size() || v > UINT64_MAX / mult) bad_quota(whole);
    return v * mult;
}

}  // namespace

std::string normalize_quota(std::string_view text) {
    std::string up;
    for (char c : text) up += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    if (up == "NOQUOTA") return "NOQUOTA";
    std::size_t comma = text.find(',');
    std::string out;
    if (comma == std::string_view::npos) {
        out = std::to_string(parse_size(text, text));
    } else {
        std::string_view count = text.substr(comma + 1);
        if (!count.empty() && (count.back() == 'C' || count.back() == 'c')) count.remove_suffix(1);
        std::uint64_t c = 0;
        auto r = std::from_chars(count.data(), count.data() + count.size(), c);
        if (count.empty() || r.ec != std::errc() || r.ptr != count.data() + count.size()) bad_quota(text);
        out = std::to_string(parse_size(text.substr(0, comma), text)) + "S," + std::to_string(c) + "C";
    }
    if (out.size() > 30) bad_quota(text);
    return out;
}

Quota parse_quota(std::string_view s) {
    Quota q;
    if (s.empty() || s == "NOQUOTA") return q;
    std::size_t comma = s.find(',');
    std::string_view size = s.substr(0, comma);
    while (!size.empty() && (size.back() < '0' || size.back() > '9')) size.remove_suffix(1);
    std::uint64_t v = 0;
    if (std::from_chars(size.data(), size.data() + size.size(), v).ec == std::errc()) q.bytes = v;
    if (comma != std::string_view::npos) {
        std::string_view c = s.substr(comma + 1);
        while (!c.empty() && (c.back() < '0' || c.back() > '9')) c.remove_suffix(1);
        if (std::from_chars(c.data(), c.data() + c.size(), v).ec == std::errc()) q.count = v;
    }
    return q;
}

std::string check_gecos(std::string_view g) {
    if (g.size() > 48) throw Error(Exit::dataerr, "the comment (gecos) is longer than 48 characters");
    for (unsigned char c : g)
        if (c == ':' || c < 0x20 || c == 0x7f)
            throw Error(Exit::dataerr,
                        "the comment (gecos) '" + printable(g) + "' contains ':' or a control character");
    return std::string(g);
}

const std::vector<FlagName>& user_flags() {
    static const std::vector<FlagName> flags = {
        {userflag::no_passwd_chng, 'd', "no-password-change", "password can not be changed by user"},
        {userflag::no_pop, 'p', "no-pop", "pop access closed"},
        {userflag::no_webmail, 'w', "no-webmail", "webmail access closed"},
        {userflag::no_imap, 'i', "no-imap", "imap access closed"},
        {userflag::no_smtp, 's', "no-smtp", "smtp access closed"},
        {userflag::bounce_mail, 'b', "bounce-mail", "mail will be bounced back to sender"},
        {userflag::no_relay, 'r', "no-relay", "user not allowed to relay mail"},
        {userflag::no_dialup, 'u', "no-dialup", "no dialup flag has been set"},
        {userflag::qa_admin, 'a', "qa-admin", "has qmailadmin administrator privileges"},
        {userflag::v_override, 'o', "override", "has domain limit skip privileges"},
        {userflag::v_user0, '0', "user0", "user flag 0 is set"},
        {userflag::v_user1, '1', "user1", "user flag 1 is set"},
        {userflag::v_user2, '2', "user2", "user flag 2 is set"},
        {userflag::v_user3, '3', "user3", "user flag 3 is set"},
    };
    return flags;
}

std::optional<std::uint32_t> parse_flag_name(std::string_view name) {
    for (auto& f : user_flags())
        if (f.name == name) return f.bit;
    return std::nullopt;
}

void record_creation(Store& store, const DomainRef& d, const UserRecord& u, bool dry_run) {
    if (dry_run) return;
    try {
        store.record_login(d, u, LoginRecord{"add", "", static_cast<std::int64_t>(::time(nullptr))});
    } catch (const Error& e) {
        // The database rolled the whole change back (a deadlock, a Galera certification failure) or went
        // away: the change must fail, or its commit would commit nothing. Anything else only costs the
        // record, which dates the mailbox for vdeloldusers (it then goes by its Maildir's time).
        if (e.code() == Exit::tempfail || e.code() == Exit::unavailable) throw;
    } catch (const std::exception&) {
    }
}

bool is_role_account(std::string_view name) noexcept {
    return name == "postmaster" || name == "abuse" || name == "mailer-daemon";
}

FoundUser require_any_user(Store& store, const Domain& d, std::string_view name) {
    if (auto u = store.get_user(d.ref(), name)) return FoundUser{std::move(*u), true};
    if (auto u = store.get_inactive_user(d.ref(), name)) return FoundUser{std::move(*u), false};
    throw Error(Exit::nouser, "no mailbox " + std::string(name) + "@" + d.name);
}

void stage_mailbox_home(FileTransaction& tx, const fs::path& home, Owner owner) {
    tx.make_dir(home.parent_path().parent_path(), 0755);  // the bucket
    tx.make_dir(home.parent_path(), 0750, owner);         // the domain's tree in it
    tx.make_dir(home, 0750, owner);
    for (const char* sub : {"Maildir", "Maildir/cur", "Maildir/new", "Maildir/tmp"}) tx.make_dir(home / sub, 0750, owner);
}

UserRecord require_user(Store& store, const Domain& d, std::string_view name) {
    auto u = store.get_user(d.ref(), name);
    if (!u) throw Error(Exit::nouser, "no mailbox " + std::string(name) + "@" + d.name);
    return *u;
}

namespace {

// Where a mailbox of `d` has its home on `host`: under the base path the domain's row names (one for every
// host), else under that host's own base path, as its vadduser lays homes out there.
fs::path home_on_host(Store& store, const Domain& d, std::string_view name, const ClusterHost& host) {
    auto row = store.shared_domain(d.name);
    if ((row && !row->base_path.empty()) || host.base_path.empty()) return mailbox_home(d, name);
    Domain there = d;
    there.base_path = host.base_path;
    return mailbox_home(there, name);
}

ClusterHost require_cluster_host(Store& store, const std::string& host) {
    if (!store.shares_domains())
        throw Error(Exit::usage, "--host " + host + ": the " + std::string(store.backend()) +
                                     " store is not shared between hosts (the MariaDB store is)");
    auto h = store.cluster_host(host);
    if (!h)
        throw Error(Exit::nohost, "no host " + host + " shares this database (its qmailctl sync registers it, from "
                                  "its control/me and control/clusteraddress)");
    return *h;
}

UserRecord add_user_once(const Paths& paths, Store& store, const AddUserRequest& req, bool dry_run, ChangeReport* report) {
    Domain d = require_domain(paths, store, req.address.domain);
    DomainRef ref = d.ref();
    const std::string& name = req.address.local;
    if (store.get_user(ref, name)) throw Error(Exit::exists, "mailbox " + req.address.str() + " already exists");
    if (store.get_inactive_user(ref, name))
        throw Error(Exit::exists, "mailbox " + req.address.str() + " already exists, inactive (vmoduser --active)");
    auto aliases = store.aliases(ref);
    if (std::find(aliases.begin(), aliases.end(), name) != aliases.end())
        throw Error(Exit::exists, req.address.str() + " is an alias; remove the alias before adding a mailbox");
    // the host it lives on (hostcntrl), when hosts share the database, and its home there
    const std::string me = store.shares_domains() ? this_host_name(paths) : "";
    std::string host = me;
    fs::path home = mailbox_home(d, name);
    if (req.host && *req.host != host) {
        home = home_on_host(store, d, name, require_cluster_host(store, *req.host));  // that host's sync makes it
        host = *req.host;
    }
    const bool here = host == me;
    std::error_code ec;
    if (here && fs::exists(home, ec))
        throw Error(Exit::exists, "mailbox " + req.address.str() + ": its home " + home.string() +
                                      " already exists (see qmailctl check)");

    UserRecord u;
    u.name = name;
    u.passwd = req.passwd;
    u.gecos = req.gecos ? check_gecos(*req.gecos) : name;
    u.dir = home.string();
    u.quota = req.quota ? *req.quota : default_mailbox_quota(d);
    u.scram = req.scram;

    FileTransaction tx(dry_run);
    if (here) stage_mailbox_home(tx, home, d.owner);
    store.add_user(ref, u);
    if (!host.empty()) store.set_mailbox_host(ref, name, host);
    if (req.inactive) store.set_active(ref, name, false);
    record_creation(store, ref, u, dry_run);  // in the change's transaction (mysql)
    apply_change(tx, store);
    if (report) report->steps = tx.log();
    return u;
}

}  // namespace

// Both retried when the database rolls the change back (two hosts' changes in a deadlock, or a Galera
// certification failure at commit): the retry then finds what the other host did ("already exists").
UserRecord add_user(const Paths& paths, Store& store, const AddUserRequest& req, bool dry_run, ChangeReport* report) {
    UserRecord u;
    retry_rolled_back(store, [&] { u = add_user_once(paths, store, req, dry_run, report); });
    return u;
}

namespace {

void delete_user_once(const Paths& paths, Store& store, const Address& a, bool dry_run, ChangeReport* report) {
    Domain d = require_domain(paths, store, a.domain);
    DomainRef ref = d.ref();
    const FoundUser found = require_any_user(store, d, a.local);
    const UserRecord& u = found.user;
    FileTransaction tx(dry_run);
    if (!u.dir.empty()) tx.remove(u.dir);
    if (found.active)
        store.remove_user(ref, u.name);
    else
        store.remove_inactive_user(ref, u.name);
    store.remove_filters(ref, u.name);
    // Its own .qmail-<name>, and alias lines that forward to it.
    std::string target = "&" + a.str();
    for (auto& alias : store.aliases(ref)) {
        auto lines = store.alias_lines(ref, alias);
        if (alias == u.name) {
            store.set_alias(ref, alias, {});
            continue;
        }
        auto kept = lines;
        std::erase(kept, target);
        if (kept.size() != lines.size()) store.set_alias(ref, alias, kept);
    }
    apply_change(tx, store);
    if (report) report->steps = tx.log();
}

}  // namespace

void delete_user(const Paths& paths, Store& store, const Address& a, bool dry_run, ChangeReport* report) {
    retry_rolled_back(store, [&] { delete_user_once(paths, store, a, dry_run, report); });
}

namespace {

RenameUserResult rename_user_once(const Paths& paths, Store& store, const Address& from, const Address& to,
                                  bool dry_run) {
    Domain dfrom = require_domain(paths, store, from.domain);
    Domain dto = require_domain(paths, store, to.domain);
    if (dfrom.name == dto.name && from.local == to.local)
        throw Error(Exit::dataerr, from.str() + " and " + to.str() + " are the same mailbox");
    if (dfrom.owner.uid != dto.owner.uid || dfrom.owner.gid != dto.owner.gid)
        throw Error(Exit::dataerr, dfrom.name + " and " + dto.name + " belong to different owners (" +
                                       std::to_string(dfrom.owner.uid) + ":" + std::to_string(dfrom.owner.gid) +
                                       " and " + std::to_string(dto.owner.uid) + ":" + std::to_string(dto.owner.gid) +
                                       "); a mailbox is renamed only between domains of one owner");
    DomainRef rfrom = dfrom.ref(), rto = dto.ref();
    const FoundUser found = require_any_user(store, dfrom, from.local);  // an inactive one stays inactive
    const UserRecord& u = found.user;
    const Address target{to.local, dto.name};
    if (store.get_user(rto, to.local) || store.get_inactive_user(rto, to.local))
        throw Error(Exit::exists, "mailbox " + target.str() + " already exists");
    auto aliases = store.aliases(rto);
    if (std::find(aliases.begin(), aliases.end(), to.local) != aliases.end())
        throw Error(Exit::exists, target.str() + " is an alias; remove the alias before renaming a mailbox to it");
    const fs::path old_home(u.dir), new_home = mailbox_home(dto, to.local);
    std::error_code ec;
    const bool move_home = !u.dir.empty() && fs::exists(old_home, ec);
    if (move_home && fs::exists(new_home, ec))
        throw Error(Exit::exists, "mailbox " + target.str() + ": its home " + new_home.string() +
                                      " already exists (see qmailctl check)");

    FileTransaction tx(dry_run);
    UserRecord renamed = u;
    renamed.name = to.local;
    renamed.dir = new_home.string();
    // the record, its logins, its host, the rules and the mailbox's own .qmail file under the new name
    const auto host = store.mailbox_host(rfrom, u.name);
    store.move_logins(rfrom, u.name, rto, to.local);
    if (found.active) {
        store.remove_user(rfrom, u.name);
        store.add_user(rto, renamed);
    } else {
        store.remove_inactive_user(rfrom, u.name);
        store.add_user(rto, renamed);
        store.set_active(rto, to.local, false);
    }
    if (host) store.set_mailbox_host(rto, to.local, *host);
    auto rules = store.filters(rfrom, u.name);
    store.remove_filters(rfrom, u.name);
    for (auto& r : rules) store.add_filter(rto, to.local, r);
    if (auto own = store.alias_lines(rfrom, u.name); !own.empty()) {
        store.set_alias(rfrom, u.name, {});
        store.set_alias(rto, to.local, own);
    }
    const std::string old_address = u.name + "@" + dfrom.name;
    RenameUserResult result;
    result.forwards = retarget_forwards(paths, store, old_address, target.str());
    store.rename_grants(old_address, target.str());
    if (move_home) {
        tx.make_dir(new_home.parent_path().parent_path(), 0755);
        tx.make_dir(new_home.parent_path(), 0750, dto.owner);
        tx.move(old_home, new_home);
    }
    apply_change(tx, store);
    result.user = renamed;
    result.steps = tx.log();
    return result;
}

}  // namespace

RenameUserResult rename_user(const Paths& paths, Store& store, const Address& from, const Address& to, bool dry_run) {
    RenameUserResult r;
    retry_rolled_back(store, [&] { r = rename_user_once(paths, store, from, to, dry_run); });
    return r;
}

MoveMailboxResult move_mailbox(const Paths& paths, Store& store, const Address& a, const std::string& host,
                               bool dry_run) {
    const ClusterHost target = require_cluster_host(store, host);
    Domain d = require_domain(paths, store, a.domain);
    const DomainRef ref = d.ref();
    MoveMailboxResult r;
    r.user = require_any_user(store, d, a.local).user;
    const std::string me = this_host_name(paths);
    r.from_host = store.mailbox_host(ref, a.local).value_or("");
    if (r.from_host.empty()) r.from_host = me;  // no row: a mailbox of the host that made it, which is this one
    if (r.from_host == host) return r;
    if (r.from_host != me)
        throw Error(Exit::dataerr, a.str() + " lives on host " + r.from_host + ", which holds its Maildir: run " +
                                       "vmoduser --host there");
    if (target.homes.empty())
        throw Error(Exit::config, "host " + host + " does not say how the other hosts reach its mailbox homes: its "
                                  "control/clusterhomes names an rsync destination (such as vmail@" + target.address +
                                  ":) or 'local' for a file system the hosts share, and its qmailctl sync registers it");
    const fs::path old_home(r.user.dir), new_home = home_on_host(store, d, a.local, target);
    const bool shared = target.homes == "local";
    const bool same_place = shared && new_home == old_home;  // one file system, one path: only the owner changes
    std::error_code ec;
    if (!same_place && (r.user.dir.empty() || !fs::is_directory(old_home / "Maildir", ec)))
        throw Error(Exit::noinput, a.str() + ": its Maildir " + (old_home / "Maildir").string() +
                                       " is not on this host; nothing to copy");
    const std::string dest = (shared ? std::string() : target.homes) + new_home.string() + "/";
    const fs::path aside = old_home.string() + ".moving";
    auto copy = [&](const fs::path& from, bool only_new) {
        std::vector<std::string> argv{"rsync", "--archive", "--mkpath"};
        if (only_new) argv.push_back("--ignore-existing");
        argv.push_back(from.string() + "/");
        argv.push_back(dest);
        r.steps.push_back("copy " + from.string() + "/ to " + dest + (only_new ? " (the mail that came meanwhile)" : ""));
        if (!dry_run) run_command(argv, Exit::ioerr, "to copy the mailbox's home (package rsync)");
    };
    if (!same_place) copy(old_home, false);  // 1. the copy, while the mailbox is still here

    // 2. the owner and the home, in one transaction (re-read inside, so a change made meanwhile stays)
    r.moved = true;
    r.steps.push_back("change the host to " + host + " and the home to " + new_home.string());
    if (dry_run) {
        r.user.dir = new_home.string();
        if (!same_place) r.steps.push_back("remove " + old_home.string());
        return r;
    }
    retry_rolled_back(store, [&] {
        FoundUser now = require_any_user(store, d, a.local);
        now.user.dir = new_home.string();
        store.set_mailbox_host(ref, a.local, host);
        if (now.active)
            store.update_user(ref, now.user);
        else
            store.update_inactive_user(ref, now.user);
        FileTransaction tx(false);
        apply_change(tx, store);
        r.user = now.user;
    });
    if (same_place) return r;

    // 3. the old copy: set aside (a delivery still writing into it fails, is deferred and then goes to the new
    // host), the mail that reached it during the copy sent after the rest, then removed
    if (::rename(old_home.c_str(), aside.c_str()) != 0) {
        r.warnings.push_back("cannot set the old home " + old_home.string() + " aside (" + std::strerror(errno) +
                             "): it stays; mail that reached it during the copy is not on host " + host);
        return r;
    }
    try {
        copy(aside, true);
    } catch (const Error& e) {
        r.warnings.push_back(std::string(e.what()) + "; the old home stays as " + aside.string());
        return r;
    }
    fs::remove_all(aside, ec);
    if (ec)
        r.warnings.push_back("cannot remove the old home " + aside.string() + ": " + ec.message());
    else
        r.steps.push_back("remove " + old_home.string());
    return r;
}

void update_user(Store& store, const Domain& d, const UserRecord& u, bool dry_run) {
    retry_rolled_back(store, [&] {
        FileTransaction tx(dry_run);
        store.update_user(d.ref(), u);
        apply_change(tx, store);
    });
}

MaildirUsage maildir_usage(const fs::path& maildir) {
    if (auto kept = maildirsize_usage(maildir)) return *kept;
    MaildirUsage use;
    auto scan = [&](const fs::path& dir) {
        for (const char* sub : {"new", "cur"}) {
            std::error_code ec;
            for (fs::directory_iterator it(dir / sub, ec), end; !ec && it != end; it.increment(ec)) {
                struct stat st {};
                if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
                    use.bytes += static_cast<std::uint64_t>(st.st_size);
                    ++use.count;
                }
            }
        }
    };
    scan(maildir);
    std::error_code ec;
    for (fs::directory_iterator it(maildir, ec), end; !ec && it != end; it.increment(ec)) {
        std::string n = it->path().filename().string();
        if (n.size() > 1 && n[0] == '.' && n != ".." && it->is_directory(ec)) scan(it->path());
    }
    return use;
}

}  // namespace qv
