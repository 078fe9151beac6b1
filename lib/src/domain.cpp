#include "qvmail/domain.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "qvmail/alias.hpp"
#include "qvmail/assign.hpp"
#include "qvmail/cdb.hpp"
#include "qvmail/cdb_sources.hpp"
#include "qvmail/control.hpp"
#include "qvmail/domain_sync.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/text.hpp"
#include "qvmail/transaction.hpp"
#include "qvmail/user.hpp"

namespace qv {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kRcpthostsLimit = 50;  // beyond this, domains go to morercpthosts (+ .cdb)
constexpr const char* kBuckets[] = {"A2E", "F2K", "L2P", "Q2S", "T2Zsym"};

// The first line of an optional file (nullopt when it is missing or empty); a file that exists but
// cannot be read throws, so that a domain is never taken for one without its settings.
std::optional<std::string> first_line(const fs::path& p) {
    ControlFile f = ControlFile::load(p);
    if (f.text().empty()) return std::nullopt;
    std::string line = f.text().substr(0, f.text().find('\n'));
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    return line;
}

Domain domain_from(const Paths& paths, const AssignEntry& e) {
    Domain d;
    d.name = e.user;
    d.owner = Owner{e.uid, e.gid};
    d.dir = e.dir;
    auto bp = first_line(d.dir / ".base_path");
    d.base_path = bp && !bp->empty() ? fs::path(*bp) : paths.base_path;
    if (auto h = first_line(d.dir / "hash_method")) d.hash = parse_hash_method(*h);
    ControlFile qmail_default = ControlFile::load(d.dir / ".qmail-default");
    if (qmail_default.exists()) d.delivery = parse_qmail_default(qmail_default.text());
    return d;
}

fs::path assign_file(const Paths& p) {
    return p.assigndir / "assign";
}

// Adds (or removes) one entry of a control file within the transaction; no write if nothing changes.
bool edit_control(FileTransaction& tx, ControlFile& f, std::string_view entry, bool add) {
    bool changed = add ? f.add(entry) : f.remove(entry) > 0;
    if (changed) tx.write(f.path(), f.text(), 0644);
    return changed;
}

bool edit_control(FileTransaction& tx, const fs::path& file, std::string_view entry, bool add) {
    ControlFile f = ControlFile::load(file);
    return edit_control(tx, f, entry, add);
}

void write_control_and_cdb(FileTransaction& tx, const ControlFile& f, const fs::path& cdb, bool bulk) {
    tx.write(f.path(), f.text(), 0644);
    if (!bulk) stage_cdb(tx, f.path(), cdb, f.text(), compile_lowercase_lines);
}

void write_assign(FileTransaction& tx, const Paths& paths, const AssignFile& a, bool bulk) {
    std::string text = a.content();
    tx.write(assign_file(paths), text, 0644);
    if (!bulk) stage_cdb(tx, assign_file(paths), paths.assigndir / "cdb", text, compile_assign);
}

// The domain users/assign has under `name` as it stands (an alias domain not resolved).
std::optional<Domain> find_assigned(const Paths& paths, std::string_view name) {
    // users/cdb when it is current (one lookup, however many domains), else users/assign itself
    fs::path db = paths.assigndir / "cdb";
    if (auto r = current_cdb(db, assign_file(paths))) {
        auto v = r->find("!" + ascii_lower(name) + "-");
        if (!v) return std::nullopt;
        // the six fields user, uid, gid, dir, dash, ext, separated by NULs
        std::string line = "+" + ascii_lower(name) + "-:" + std::string(*v) + ":";
        std::replace(line.begin(), line.end(), '\0', ':');
        auto e = parse_assign_line(line);
        if (e && e->user == ascii_lower(name)) return domain_from(paths, *e);
        // anything else (a hand-made line for another user) is left to the text, which says what it is
    }
    auto e = AssignFile::load(assign_file(paths)).domain(name);
    if (!e) return std::nullopt;
    return domain_from(paths, *e);
}

// The real domain of an alias domain `d` (its directory a link to a sibling domain's), if it is one.
std::optional<Domain> real_domain_of(const Paths& paths, const Domain& d) {
    struct stat st {};
    if (::lstat(d.dir.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return std::nullopt;
    std::error_code ec;
    fs::path to = fs::read_symlink(d.dir, ec);
    if (ec) return std::nullopt;
    std::string real = to.filename().string();
    if (real.empty() || real == d.name) return std::nullopt;
    auto r = find_assigned(paths, real);
    if (!r || ::lstat(r->dir.c_str(), &st) != 0 || S_ISLNK(st.st_mode) || !fs::equivalent(r->dir, d.dir, ec))
        return std::nullopt;  // not IndiMail's layout: the domain stands as it is
    r->alias = d.name;
    return r;
}

}  // namespace

std::optional<Domain> find_domain(const Paths& paths, std::string_view name) {
    auto d = find_assigned(paths, name);
    if (!d) return d;
    if (auto real = real_domain_of(paths, *d)) return real;
    return d;
}

std::vector<std::string> alias_domains(const Domain& d) {
    std::vector<std::string> out;
    ControlFile::load(d.dir / ".aliasdomains").for_each_line([&](std::string_view l) {
        if (auto e = control_entry(l); !e.empty()) out.emplace_back(e);
        return true;
    });
    std::sort(out.begin(), out.end());
    return out;
}

Domain require_domain(const Paths& paths, std::string_view name) {
    auto d = find_domain(paths, name);
    if (!d) throw Error(Exit::nohost, "no such domain " + std::string(name));
    return *d;
}

Domain require_domain(const Paths& paths, Store& store, std::string_view name) {
    if (auto d = find_domain(paths, name)) return *d;
    if (store.shares_domains() && store.shared_domain(ascii_lower(name)))
        throw Error(Exit::nohost, "no such domain " + std::string(name) +
                                      " on this host yet: the database has it (added on another host); "
                                      "qmailctl sync lays it out here");
    throw Error(Exit::nohost, "no such domain " + std::string(name));
}

std::vector<Domain> list_domains(const Paths& paths) {
    std::vector<Domain> out;
    for (auto& e : AssignFile::load(assign_file(paths)).domains()) {
        Domain d = domain_from(paths, e);
        if (!real_domain_of(paths, d)) out.push_back(std::move(d));
    }
    return out;
}

HashMethod domain_hash_method(const Paths& paths, const Domain& d) {
    if (paths.password_hash) {
        auto m = parse_hash_method(*paths.password_hash);
        if (!m) throw Error(Exit::config, "PASSWORD_HASH=" + *paths.password_hash + " is not a hash method");
        return *m;
    }
    if (d.hash) return *d.hash;
    if (auto h = first_line(paths.control("hash_method")))
        if (auto m = parse_hash_method(*h)) return *m;
    return kDefaultHashMethod;
}

std::string_view mailbox_bucket(std::string_view user) {
    char c = ascii_lower(user.empty() ? 't' : user[0]);
    if (c >= 'a' && c <= 'e') return "A2E";
    if (c >= 'f' && c <= 'k') return "F2K";
    if (c >= 'l' && c <= 'p') return "L2P";
    if (c >= 'q' && c <= 's') return "Q2S";
    return "T2Zsym";
}

fs::path mailbox_home(const Domain& d, std::string_view user) {
    return d.base_path / std::string(mailbox_bucket(user)) / d.name / std::string(user);
}

Owner default_domain_owner() {
    if (struct passwd* pw = ::getpwnam("indimail")) {
        gid_t gid = pw->pw_gid;
        if (struct group* gr = ::getgrnam("indimail")) gid = gr->gr_gid;
        return Owner{pw->pw_uid, gid};
    }
    if (::geteuid() == 0) return Owner{555, 555};
    return Owner{::geteuid(), ::getegid()};
}

void apply_change(FileTransaction& tx, Store& store) {
    if (tx.dry_run()) {
        store.stage(tx);
        store.rollback();
        tx.finish();
        return;
    }
    try {
        store.stage(tx);
        tx.publish();
    } catch (...) {
        store.rollback();
        throw;  // the transaction undoes itself when it goes out of scope
    }
    try {
        store.commit();
    } catch (...) {
        tx.undo();
        store.rollback();
        throw;
    }
    tx.finish();
}

namespace {

// A domain's entries in rcpthosts (or morercpthosts + cdb when rcpthosts is full) and virtualdomains.
void add_domain_controls(FileTransaction& tx, const Paths& paths, const std::string& name, ControlFile& vdomains, bool bulk) {
    tx.make_dir(paths.controldir, 0755);
    ControlFile rcpthosts = ControlFile::load(paths.control("rcpthosts"));
    ControlFile more = ControlFile::load(paths.control("morercpthosts"));
    if (!rcpthosts.contains(name) && !more.contains(name)) {
        if (rcpthosts.count_entries() < kRcpthostsLimit) {
            edit_control(tx, rcpthosts, name, true);
        } else {
            more.add(name);
            write_control_and_cdb(tx, more, paths.control("morercpthosts.cdb"), bulk);
        }
    }
    edit_control(tx, vdomains, name + ":" + name, true);
    edit_control(tx, paths.control("locals"), name, false);
}

// Refuses a name that control/virtualdomains routes already.
void refuse_routed(const ControlFile& vdomains, const std::string& name) {
    std::string route = name + ":";
    vdomains.for_each_line([&](std::string_view l) {
        if (control_entry(l).starts_with(route))
            throw Error(Exit::exists, "domain " + name + ": control/virtualdomains already routes it (" +
                                          std::string(control_entry(l)) + ")");
        return true;
    });
}

// Takes the domains `names` out of rcpthosts, morercpthosts, virtualdomains and chkrcptdomains.
void remove_domain_controls(FileTransaction& tx, const Paths& paths, const std::vector<std::string>& names) {
    ControlFile rcpthosts = ControlFile::load(paths.control("rcpthosts"));
    ControlFile more = ControlFile::load(paths.control("morercpthosts"));
    ControlFile vdomains = ControlFile::load(paths.control("virtualdomains"));
    ControlFile chkrcpt = ControlFile::load(paths.control("chkrcptdomains"));
    bool r = false, m = false, v = false, c = false;
    for (const auto& n : names) {
        r = rcpthosts.remove(n) > 0 || r;
        m = more.remove(n) > 0 || m;
        v = vdomains.remove(n + ":" + n) > 0 || v;
        c = chkrcpt.remove(n) > 0 || c;
    }
    if (r) tx.write(rcpthosts.path(), rcpthosts.text(), 0644);
    if (m) write_control_and_cdb(tx, more, paths.control("morercpthosts.cdb"), false);
    if (v) tx.write(vdomains.path(), vdomains.text(), 0644);
    if (c) tx.write(chkrcpt.path(), chkrcpt.text(), 0644);
}

}  // namespace

namespace {

// The checks before a domain is added on this host: not in users/assign, no directory, no route.
fs::path refuse_taken_domain(const Paths& paths, const AssignFile& assign, const ControlFile& vdomains,
                             const std::string& name, const std::optional<fs::path>& base_dir) {
    if (assign.domain(name)) throw Error(Exit::exists, "domain " + name + " already exists");
    fs::path dir = (base_dir ? *base_dir : paths.domaindir) / "domains" / name;
    std::error_code ec;
    if (fs::exists(dir, ec))
        throw Error(Exit::exists, "domain " + name + ": " + dir.string() +
                                      " already exists, though users/assign does not list it (see qmailctl check)");
    refuse_routed(vdomains, name);
    return dir;
}

// What a domain is on this host, staged into `tx`: its directory with .qmail-default, bulk_mail/,
// hash_method and .base_path, its users/assign line, its control-file entries and its mailbox trees.
Domain stage_domain_layout(FileTransaction& tx, const Paths& paths, AssignFile& assign, ControlFile& vdomains,
                           const AddDomainRequest& req, const fs::path& dir) {
    const std::string& name = req.name;
    Domain d;
    d.name = name;
    d.owner = req.owner;
    d.dir = dir;
    d.base_path = req.base_path ? *req.base_path : paths.base_path;
    d.hash = req.hash;
    d.delivery = req.delivery;

    tx.make_dir(dir.parent_path(), 0755);
    tx.make_dir(dir, 0750, req.owner);
    tx.make_dir(dir / "bulk_mail", 0750, req.owner);
    tx.write(dir / ".qmail-default", format_qmail_default(paths.sbindir, req.delivery), 0600, req.owner);
    if (req.hash) tx.write(dir / "hash_method", std::string(to_string(*req.hash)) + "\n", 0644, req.owner);
    if (req.base_path) tx.write(dir / ".base_path", req.base_path->string() + "\n", 0644, req.owner);

    tx.make_dir(paths.assigndir, 0755);
    assign.add(domain_assign_entry(name, req.owner.uid, req.owner.gid, dir));
    write_assign(tx, paths, assign, req.bulk);
    add_domain_controls(tx, paths, name, vdomains, req.bulk);
    if (req.chkrcpt) edit_control(tx, paths.control("chkrcptdomains"), name, true);

    for (const char* b : kBuckets) {
        tx.make_dir(d.base_path / b, 0755);
        tx.make_dir(d.base_path / b / name, 0750, req.owner);
    }
    return d;
}

// "user:group" of an owner, each part empty where the id has no name on this host.
std::string owner_names(Owner o) {
    std::string out;
    if (struct passwd* pw = ::getpwuid(o.uid)) out = pw->pw_name;
    out += ':';
    if (struct group* gr = ::getgrgid(o.gid)) out += gr->gr_name;
    return out;
}

}  // namespace

SharedDomain shared_domain_of(const Domain& d, bool chkrcpt, const Paths& paths) {
    SharedDomain s;
    s.name = d.name;
    s.owner = owner_names(d.owner);
    s.ids = d.owner;
    if (d.delivery) {
        s.handler = d.delivery->handler;
        s.vfilter = d.delivery->vfilter;
    }
    if (d.hash) s.hash = std::string(to_string(*d.hash));
    if (d.base_path != paths.base_path) s.base_path = d.base_path.string();
    s.chkrcpt = chkrcpt;
    return s;
}

Owner local_owner(const SharedDomain& s) {
    Owner o = s.ids;
    auto colon = s.owner.find(':');
    std::string user = s.owner.substr(0, colon), group = colon == std::string::npos ? "" : s.owner.substr(colon + 1);
    if (!user.empty())
        if (struct passwd* pw = ::getpwnam(user.c_str())) o.uid = pw->pw_uid;
    if (!group.empty())
        if (struct group* gr = ::getgrnam(group.c_str())) o.gid = gr->gr_gid;
    return o;
}

bool in_chkrcptdomains(const Paths& paths, std::string_view name) {
    return ControlFile::load(paths.control("chkrcptdomains")).contains(name);
}

namespace {

Domain add_domain_once(const Paths& paths, Store& store, const AddDomainRequest& req, bool dry_run, ChangeReport* report) {
    const std::string& name = req.name;
    if (req.owner.uid == 0)
        throw Error(Exit::usage, "domain " + name + " would belong to root (uid 0); give -u USER or -i UID -g GID");
    AssignFile assign = AssignFile::load(assign_file(paths));
    ControlFile vdomains = ControlFile::load(paths.control("virtualdomains"));
    fs::path dir = refuse_taken_domain(paths, assign, vdomains, name, req.base_dir);

    FileTransaction tx(dry_run);
    Domain d = stage_domain_layout(tx, paths, assign, vdomains, req, dir);
    DomainRef ref = d.ref(req.bulk);
    store.create_domain(ref);
    // shared through the database: the row every other host derives this domain from (Error 9 when one
    // of them has the name already)
    store.put_shared_domain(shared_domain_of(d, req.chkrcpt, paths));

    // The postmaster's mailbox.
    fs::path home = mailbox_home(d, "postmaster");
    stage_mailbox_home(tx, home, req.owner);
    UserRecord pm;
    pm.name = "postmaster";
    pm.passwd = req.postmaster_passwd;
    pm.scram = req.postmaster_scram;
    pm.gecos = "Postmaster";
    pm.dir = home.string();
    pm.quota = req.postmaster_quota;
    store.add_user(ref, pm);
    if (store.shares_domains())  // its Maildir is on this host: the others hand its mail here
        if (std::string me = this_host_name(paths); !me.empty()) store.set_mailbox_host(ref, "postmaster", me);
    for (const char* alias : {"abuse", "mailer-daemon"}) store.set_alias(ref, alias, {"&postmaster@" + name});

    record_creation(store, ref, pm, dry_run);  // in the change's transaction (mysql)
    apply_change(tx, store);
    if (report) report->steps = tx.log();
    return d;
}

}  // namespace

Domain add_domain(const Paths& paths, Store& store, const AddDomainRequest& req, bool dry_run, ChangeReport* report) {
    Domain d;
    retry_rolled_back(store, [&] { d = add_domain_once(paths, store, req, dry_run, report); });
    return d;
}

void add_local_domain(const Paths& paths, Store& store, const SharedDomain& row, bool dry_run, ChangeReport* report) {
    AddDomainRequest req;
    req.name = row.name;
    req.owner = local_owner(row);
    if (!row.base_path.empty()) req.base_path = fs::path(row.base_path);
    if (!row.handler.empty()) req.delivery = QmailDefault{row.vfilter, row.handler};
    if (!row.hash.empty()) req.hash = parse_hash_method(row.hash);
    req.chkrcpt = row.chkrcpt;
    AssignFile assign = AssignFile::load(assign_file(paths));
    ControlFile vdomains = ControlFile::load(paths.control("virtualdomains"));
    fs::path dir = refuse_taken_domain(paths, assign, vdomains, row.name, std::nullopt);
    FileTransaction tx(dry_run);
    stage_domain_layout(tx, paths, assign, vdomains, req, dir);
    apply_change(tx, store);
    if (report) report->steps = tx.log();
}

namespace {

// Stages .qmail-default with `q` when the domain's differs (or is missing, or made by hand).
void stage_qmail_default(FileTransaction& tx, const Paths& paths, const Domain& d, const QmailDefault& q) {
    if (!d.delivery || d.delivery->handler != q.handler || d.delivery->vfilter != q.vfilter)
        tx.write(d.dir / ".qmail-default", format_qmail_default(paths.sbindir, q), 0600, d.owner);
}

}  // namespace

void update_local_domain(const Paths& paths, Store& store, const Domain& d, const SharedDomain& row, bool dry_run,
                         ChangeReport* report) {
    FileTransaction tx(dry_run);
    if (!row.handler.empty()) stage_qmail_default(tx, paths, d, QmailDefault{row.vfilter, row.handler});
    std::string hash = d.hash ? std::string(to_string(*d.hash)) : "";
    if (row.hash != hash) {
        if (row.hash.empty()) tx.remove(d.dir / "hash_method");
        else tx.write(d.dir / "hash_method", row.hash + "\n", 0644, d.owner);
    }
    if (row.chkrcpt != in_chkrcptdomains(paths, d.name))
        edit_control(tx, paths.control("chkrcptdomains"), d.name, row.chkrcpt);
    apply_change(tx, store);
    if (report) report->steps = tx.log();
}

namespace {

void add_alias_domain_once(const Paths& paths, Store& store, const std::string& alias, const std::string& real_name,
                           bool dry_run, ChangeReport* report, bool shared_row) {
    AssignFile assign = AssignFile::load(assign_file(paths));
    if (assign.domain(alias)) throw Error(Exit::exists, "domain " + alias + " already exists");
    Domain real = require_domain(paths, store, real_name);
    if (!real.alias.empty())
        throw Error(Exit::dataerr, real_name + " is itself an alias domain of " + real.name + ": name " + real.name);
    const fs::path link = real.dir.parent_path() / alias;
    struct stat st {};
    if (::lstat(link.c_str(), &st) == 0)
        throw Error(Exit::exists, "domain " + alias + ": " + link.string() +
                                      " already exists, though users/assign does not list it (see qmailctl check)");
    ControlFile vdomains = ControlFile::load(paths.control("virtualdomains"));
    refuse_routed(vdomains, alias);

    FileTransaction tx(dry_run);
    tx.symlink(link, real.dir.filename());  // relative, as IndiMail makes it
    assign.add(domain_assign_entry(alias, real.owner.uid, real.owner.gid, link));
    write_assign(tx, paths, assign, false);
    add_domain_controls(tx, paths, alias, vdomains, false);
    ControlFile aliases = ControlFile::load(real.dir / ".aliasdomains");
    aliases.add(alias);
    tx.write(aliases.path(), aliases.text(), 0640, real.owner);
    if (shared_row) store.put_shared_domain(alias_domain_row(alias, real.name));
    apply_change(tx, store);
    if (report) report->steps = tx.log();
}

}  // namespace

void add_alias_domain(const Paths& paths, Store& store, const std::string& alias, const std::string& real_name,
                      bool dry_run, ChangeReport* report, bool shared_row) {
    retry_rolled_back(store, [&] { add_alias_domain_once(paths, store, alias, real_name, dry_run, report, shared_row); });
}

namespace {

void delete_domain_once(const Paths& paths, Store& store, std::string_view name, bool dry_run, ChangeReport* report,
                        bool keep_mail) {
    Domain d = require_domain(paths, store, name);
    DomainRef ref = d.ref();
    FileTransaction tx(dry_run);
    AssignFile assign = AssignFile::load(assign_file(paths));

    // An alias domain's name: that alias domain only (its link, its lines, its .aliasdomains entry).
    // The real domain's name: its alias domains go with it.
    std::vector<std::string> aliases;
    if (!d.alias.empty()) {
        aliases.push_back(d.alias);
    } else {
        for (const auto& a : alias_domains(d))
            if (auto ad = find_domain(paths, a); ad && ad->alias == a && ad->name == d.name) aliases.push_back(a);
    }
    for (const auto& a : aliases) {
        if (auto e = assign.domain(a)) tx.remove(e->dir);  // the link (remove() never follows it)
        assign.remove_domain(a);
    }
    if (!d.alias.empty()) {
        ControlFile left = ControlFile::load(d.dir / ".aliasdomains");
        left.remove(d.alias);
        tx.write(left.path(), left.text(), 0640, d.owner);
        write_assign(tx, paths, assign, false);
        remove_domain_controls(tx, paths, aliases);
        store.remove_shared_domain(d.alias);
        apply_change(tx, store);
        if (report) report->steps = tx.log();
        return;
    }
    assign.remove_domain(d.name);
    write_assign(tx, paths, assign, false);
    aliases.push_back(d.name);
    remove_domain_controls(tx, paths, aliases);

    // Mailboxes kept outside the domain's buckets go one by one; the buckets go whole.
    std::vector<fs::path> trees;
    for (const char* b : kBuckets) trees.push_back(d.base_path / b / d.name);
    for (auto& u : store.users(ref)) {
        fs::path home(u.dir);
        bool inside = false;
        for (auto& t : trees) {
            auto rel = home.lexically_relative(t);
            inside = inside || (!rel.empty() && *rel.begin() != "..");
        }
        if (!inside && !u.dir.empty()) tx.remove(home);
    }
    for (auto& t : trees) {
        std::error_code ec;
        if (keep_mail && fs::exists(t, ec) && !fs::is_empty(t, ec)) {
            tx.note("kept " + t.string() + ": it holds mailbox homes");
            continue;
        }
        tx.remove(t);
    }
    tx.remove(d.dir);
    store.drop_domain(ref);
    store.remove_shared_domain(d.name);  // with its alias domains' rows

    apply_change(tx, store);
    if (report) report->steps = tx.log();
}

}  // namespace

void delete_domain(const Paths& paths, Store& store, std::string_view name, bool dry_run, ChangeReport* report,
                   bool keep_mail) {
    retry_rolled_back(store, [&] { delete_domain_once(paths, store, name, dry_run, report, keep_mail); });
}

namespace {

// `p` with the leading path `from` replaced by `to`; nullopt when `p` is not inside `from`.
std::optional<fs::path> moved_path(const fs::path& p, const fs::path& from, const fs::path& to) {
    auto rel = p.lexically_normal().lexically_relative(from.lexically_normal());
    if (rel.empty() || *rel.begin() == "..") return std::nullopt;
    return rel == "." ? to : to / rel;
}

// The domain's entries in the control files under its new name: each file written once.
void rename_domain_controls(FileTransaction& tx, const Paths& paths, const std::string& from, const std::string& to) {
    ControlFile more = ControlFile::load(paths.control("morercpthosts"));
    if (more.remove(from) > 0) {
        more.add(to);
        write_control_and_cdb(tx, more, paths.control("morercpthosts.cdb"), false);
    }
    for (const char* name : {"rcpthosts", "chkrcptdomains", "etrnhosts"}) {
        ControlFile f = ControlFile::load(paths.control(name));
        if (f.remove(from) == 0) continue;
        f.add(to);
        tx.write(f.path(), f.text(), 0644);
    }
    ControlFile vdomains = ControlFile::load(paths.control("virtualdomains"));
    vdomains.remove(from + ":" + from);
    vdomains.add(to + ":" + to);
    tx.write(vdomains.path(), vdomains.text(), 0644);
    edit_control(tx, paths.control("locals"), to, false);
}

}  // namespace

namespace {

RenameDomainResult rename_domain_once(const Paths& paths, Store& store, const std::string& from, const std::string& to,
                                      bool dry_run) {
    Domain d = require_domain(paths, store, from);
    AssignFile assign = AssignFile::load(assign_file(paths));
    if (from == to) throw Error(Exit::dataerr, from + " and " + to + " are the same domain");
    if (assign.domain(to)) throw Error(Exit::exists, "domain " + to + " already exists");
    ControlFile vdomains = ControlFile::load(paths.control("virtualdomains"));
    refuse_routed(vdomains, to);
    auto refuse_existing = [&](const fs::path& p) {
        struct stat st {};
        if (::lstat(p.c_str(), &st) == 0)
            throw Error(Exit::exists, "domain " + to + ": " + p.string() +
                                          " already exists, though users/assign does not list it (see qmailctl check)");
    };
    RenameDomainResult result;
    result.real = d.name;
    FileTransaction tx(dry_run);

    if (!d.alias.empty()) {
        // An alias domain: a new link and assign line in place of the old, and the real domain's list.
        auto e = assign.domain(from);
        const fs::path link = e->dir, new_link = link.parent_path() / to;
        refuse_existing(new_link);
        tx.remove(link);
        tx.symlink(new_link, d.dir.filename());
        assign.remove_domain(from);
        assign.add(domain_assign_entry(to, e->uid, e->gid, new_link));
        write_assign(tx, paths, assign, false);
        rename_domain_controls(tx, paths, from, to);
        ControlFile list = ControlFile::load(d.dir / ".aliasdomains");
        list.remove(from);
        list.add(to);
        tx.write(list.path(), list.text(), 0640, d.owner);
        store.remove_shared_domain(from);
        store.put_shared_domain(alias_domain_row(to, d.name));
        result.alias = true;
        apply_change(tx, store);
        result.steps = tx.log();
        return result;
    }

    DomainRef ref = d.ref();
    const fs::path new_dir = d.dir.parent_path() / to;
    refuse_existing(new_dir);
    std::vector<std::pair<fs::path, fs::path>> trees;  // the mailbox trees that move
    for (const char* b : kBuckets) {
        fs::path t = d.base_path / b / from;
        struct stat st {};
        if (::lstat(t.c_str(), &st) != 0) continue;
        refuse_existing(d.base_path / b / to);
        trees.emplace_back(t, d.base_path / b / to);
    }
    // Where a path of the domain (a home, a Maildir line) is after the move.
    auto relocate = [&](const fs::path& p) -> std::optional<fs::path> {
        for (auto& [f, t] : trees)
            if (auto m = moved_path(p, f, t)) return m;
        return moved_path(p, d.dir, new_dir);
    };

    // The store's records, written while they still name the old domain (the files store's inside the
    // directory that moves last).
    auto fix_homes = [&](std::vector<UserRecord> users, bool active) {
        for (auto& u : users) {
            auto m = u.dir.empty() ? std::nullopt : relocate(u.dir);
            if (!m) continue;
            u.dir = m->string();
            if (active)
                store.update_user(ref, u);
            else
                store.update_inactive_user(ref, u);
        }
        return users.size();
    };
    result.mailboxes = fix_homes(store.users(ref), true);
    fix_homes(store.inactive_users(ref), false);
    // Maildir lines of the domain's own aliases that point into the trees
    for (const auto& alias : store.aliases(ref)) {
        auto lines = store.alias_lines(ref, alias);
        bool any = false;
        for (auto& l : lines) {
            if (l.empty() || l[0] != '/') continue;
            if (auto m = relocate(l)) {
                l = m->string() + (l.ends_with("/") && !m->string().ends_with("/") ? "/" : "");
                any = true;
            }
        }
        if (any) store.set_alias(ref, alias, lines);
    }
    result.forwards = retarget_forwards(paths, store, "@" + from, "@" + to);
    for (auto& f : result.forwards)  // the renamed domain's own aliases by their new name
        if (f.ends_with("@" + from)) f = f.substr(0, f.size() - from.size()) + to;
    store.rename_grants("@" + from, "@" + to);
    store.rename_domain_rows(ref, to);
    if (store.shares_domains()) {  // the domain's row and its alias domains' under the new name
        std::vector<std::string> shared_aliases;
        for (auto& r : store.shared_domains())
            if (r.alias_of == from) shared_aliases.push_back(r.name);
        SharedDomain row = shared_domain_of(d, in_chkrcptdomains(paths, from), paths);
        row.name = to;
        store.remove_shared_domain(from);
        store.put_shared_domain(row);
        for (auto& a : shared_aliases) store.put_shared_domain(alias_domain_row(a, to));
    }

    // .qmail-default: a handler that names the domain (an address, a path of its trees).
    if (d.delivery) {
        QmailDefault q = *d.delivery;
        if (q.handler.ends_with("@" + from)) q.handler = q.handler.substr(0, q.handler.size() - from.size()) + to;
        else if (!q.handler.empty() && q.handler[0] == '/')
            if (auto m = relocate(q.handler)) q.handler = m->string() + (q.handler.ends_with("/") ? "/" : "");
        stage_qmail_default(tx, paths, d, q);
    }

    // users/assign, the control files, the alias domains' links
    auto e = assign.domain(from);
    assign.remove_domain(from);
    assign.add(domain_assign_entry(to, e->uid, e->gid, new_dir));
    write_assign(tx, paths, assign, false);
    rename_domain_controls(tx, paths, from, to);
    for (const auto& a : alias_domains(d)) {
        auto ae = assign.domain(a);
        if (!ae) continue;
        std::error_code ec;
        if (fs::read_symlink(ae->dir, ec).filename() != from || ec) continue;
        tx.remove(ae->dir);
        tx.symlink(ae->dir, to);
    }

    // the moves, after every write (FileTransaction::move)
    tx.move(d.dir, new_dir);
    for (auto& [f, t] : trees) tx.move(f, t);
    apply_change(tx, store);
    result.steps = tx.log();
    return result;
}

}  // namespace

RenameDomainResult rename_domain(const Paths& paths, Store& store, const std::string& from, const std::string& to,
                                 bool dry_run) {
    RenameDomainResult r;
    retry_rolled_back(store, [&] { r = rename_domain_once(paths, store, from, to, dry_run); });
    return r;
}

namespace {

void modify_domain_once(const Paths& paths, Store& store, const Domain& d, const std::optional<QmailDefault>& delivery,
                        std::optional<HashMethod> hash, bool dry_run) {
    FileTransaction tx(dry_run);
    Domain changed = d;
    if (delivery) {
        stage_qmail_default(tx, paths, d, *delivery);
        changed.delivery = delivery;
    }
    if (hash) {
        tx.write(d.dir / "hash_method", std::string(to_string(*hash)) + "\n", 0644, d.owner);
        changed.hash = hash;
    }
    if (store.shares_domains()) {
        SharedDomain row = shared_domain_of(changed, in_chkrcptdomains(paths, d.name), paths);
        if (store.shared_domain(d.name)) store.update_shared_domain(row);
        else store.put_shared_domain(row);  // a domain of this host the database did not have yet
    }
    apply_change(tx, store);
}

}  // namespace

void modify_domain(const Paths& paths, Store& store, const Domain& d, const std::optional<QmailDefault>& delivery,
                   std::optional<HashMethod> hash, bool dry_run) {
    retry_rolled_back(store, [&] { modify_domain_once(paths, store, d, delivery, hash, dry_run); });
}

}  // namespace qv
