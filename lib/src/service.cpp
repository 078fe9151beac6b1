#include "qvmail/service.hpp"

#include "qvmail/control.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/transaction.hpp"

namespace qv {

namespace fs = std::filesystem;

fs::path service_variable_file(const Paths& paths, std::string_view service, std::string_view name) {
    return paths.servicedir / std::string(service) / "variables" / std::string(name);
}

std::optional<std::string> read_service_variable(const Paths& paths, std::string_view service, std::string_view name) {
    // envdir's reading: the first line; a file this user cannot read is an error, not an unset variable
    ControlFile f = ControlFile::load(service_variable_file(paths, service, name));
    std::string line = f.text().substr(0, f.text().find('\n'));
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) line.pop_back();
    for (char& c : line)
        if (c == '\0') c = '\n';
    if (line.empty()) return std::nullopt;
    return line;
}

std::map<std::string, std::optional<std::string>> service_variables(const Paths& paths, std::string_view service) {
    std::map<std::string, std::optional<std::string>> out;
    std::error_code ec;
    fs::path dir = paths.servicedir / std::string(service) / "variables";
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
        std::string name = it->path().filename().string();
        if (name.starts_with('.') || name.find('=') != std::string::npos) continue;
        out[name] = read_service_variable(paths, service, name);
    }
    return out;
}

std::vector<std::string> set_service_variable(const Paths& paths, std::string_view service, std::string_view name,
                                              std::string_view value, bool dry_run) {
    return change_file(service_variable_file(paths, service, name), std::string(value) + "\n", 0644, dry_run);
}

std::vector<std::string> unset_service_variable(const Paths& paths, std::string_view service, std::string_view name,
                                                bool dry_run) {
    fs::path file = service_variable_file(paths, service, name);
    std::error_code ec;
    if (!fs::exists(file, ec)) throw Error(Exit::missing, std::string(name) + " is not set: no " + file.string());
    return change_file(file, std::nullopt, 0644, dry_run);
}

}  // namespace qv
