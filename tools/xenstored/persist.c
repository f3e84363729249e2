/* Persistence: the tree to and from a text file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "persist.h"
#include "store.h"

#define HEADER "# xlsnap-xenstored tree 1"

static void save_node(FILE *f, const struct xsd_node *n)
{
    fprintf(f, "%s\t", n->name);
    for (unsigned int i = 0; i < n->nperms; i++)
        fprintf(f, "%s%c%u", i ? "," : "", "nrwb"[n->perms[i].bits & 3],
                n -> perms[i].id);
    fputc('\t', f);
    for (unsigned int i = 0; i < n->datalen; i++)
        fprintf(f, "%02x", (unsigned char)n->data[i]);
    fputc('\n', f);
    for (unsigned int i = 0; i < n->childlen;
         i += (unsigned int)strlen(n->children + i) + 1) {
        char *cname = xsd_path_child(n->name, n->children + i);
        const struct xsd_node *child = cname ? xsd_store_get(cname) : NULL;
        if (child)
            save_node(f, child);
        free(cname);
    }
}

int xsd_tree_save(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        xsd_log("save tree to %s: %s", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "%s\n", HEADER);
    save_node(f, xsd_store_get("/"));
    if (ferror(f) | fclose(f) || rename(tmp, path) < 0) {
        xsd_log("save tree to %s: %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

/* "b0,r5" -> perms; returns the count, 0 when malformed. */
static unsigned int parse_perm_list(char *s, struct xsd_perm *out, unsigned int max)
{
    unsigned int n = 0;
    for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (n == max || !xsd_perms_parse(tok, 1, &out[n]))
            return 0;
        n++;
    }
    return n;
}

static int hex_decode(const char *hex, char *out, unsigned int *len)
{
    size_t n = strlen(hex);
    if (n % 2)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        unsigned int byte;
        if (sscanf(hex + i, "%2x", &byte) != 1)
            return -1;
        out[i / 2] = (char)byte;
    }
    *len = (unsigned int)(n / 2);
    return 0;
}

/* Adds one line's node under its (already loaded) parent. */
static int load_line(char *line)
{
    struct xsd_perm perms[64];
    char *tab1 = strchr(line, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
    if (!tab2)
        return -1;
    *tab1 = *tab2 = '\0';
    char *hex = tab2 + 1, *value = malloc(strlen(hex) / 2 + 1);
    unsigned int nperms = parse_perm_list(tab1 + 1, perms, 64), len = 0;
    struct xsd_node *n = NULL;
    int rc = -1;
    if (!value || !nperms || !xsd_path_valid(line) || hex_decode(hex, value, &len) < 0 ||
        xsd_store_get(line))
        goto out;
    if (strcmp(line, "/") != 0) {
        char *pname = xsd_path_parent(line);
        struct xsd_node *parent = pname ? xsd_store_get(pname) : NULL;
        free(pname);
        if (!parent || xsd_node_add_child(parent, xsd_path_base(line)) < 0)
            goto out;
    }
    n = xsd_node_new(line, perms, nperms);
    if (n && xsd_node_set_data(n, value, len) == 0) {
        n->generation = xsd_store_next_generation();
        rc = xsd_store_put(n);
        n = rc ? n : NULL;
    }
out:
    xsd_node_free(n);
    free(value);
    return rc;
}

int xsd_tree_load(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        xsd_log("load tree from %s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned int lineno = 0;
    int rc = 0;
    xsd_store_clear();
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (n && line[n - 1] == '\n')
            line[n - 1] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (load_line(line) < 0) {
            xsd_log("load tree from %s: line %u is malformed", path, lineno);
            rc = -1;
        }
    }
    free(line);
    fclose(f);
    if (rc == 0 && !xsd_store_get("/")) {
        xsd_log("load tree from %s: no root node", path);
        rc = -1;
    }
    return rc;
}
