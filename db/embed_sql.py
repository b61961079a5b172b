#!/usr/bin/env python3
"""embed_sql.py - turn db/schema.sql into a C header holding its migrations.

Usage: embed_sql.py schema.sql schema_sql.h
Each section starting with '-- migration N: what' becomes one string; N must count
1, 2, 3 ... without gaps.
"""
import re
import sys


def c_literal(text):
    out = ['"']
    for ch in text.encode('utf-8'):
        c = chr(ch)
        if c == '\\':
            out.append('\\\\')
        elif c == '"':
            out.append('\\"')
        elif c == '\n':
            out.append('\\n"\n    "')
        elif 32 <= ch < 127:
            out.append(c)
        else:
            out.append('\\%03o' % ch)
    out.append('"')
    return ''.join(out)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    text = open(src, encoding='utf-8').read()
    head = re.compile(r'^-- migration (\d+): (.*)$', re.M)
    marks = list(head.finditer(text))
    if not marks:
        sys.exit('%s: no "-- migration N: ..." section' % src)
    sections = []
    for i, m in enumerate(marks):
        if int(m.group(1)) != i + 1:
            sys.exit('%s: migration %s found where %d was expected' % (src, m.group(1), i + 1))
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        sections.append((m.group(2).strip(), text[m.end():end].strip() + '\n'))
    with open(dst, 'w', encoding='utf-8') as f:
        f.write('// schema_sql.h - generated from db/schema.sql by db/embed_sql.py: do not edit.\n')
        f.write('#pragma once\n\n')
        f.write('enum { DB_SCHEMA_VERSION = %d };\n\n' % len(sections))
        f.write('// What each migration does; migration N is db_migrations[N - 1].\n')
        f.write('static const char *const db_migration_names[DB_SCHEMA_VERSION] = {\n')
        for name, _ in sections:
            f.write('    %s,\n' % c_literal(name))
        f.write('};\n\n')
        f.write('static const char *const db_migrations[DB_SCHEMA_VERSION] = {\n')
        for _, body in sections:
            f.write('    %s,\n' % c_literal(body))
        f.write('};\n')


if __name__ == '__main__':
    main()
