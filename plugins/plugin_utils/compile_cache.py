# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compiled Jinja code of the plan, kept between runs.

Ansible compiles every template and expression from its text each time a
process meets it; the plan meets a few hundred (the roles' templates, checks
and facts), and compiling them is about half of a no-op run's planning. Jinja
keeps compiled templates between processes only for templates it loads
itself (its bytecode cache); this does the same for the plan's process:
the Python code object Jinja makes from a template's text is stored, keyed by
the text and every setting that changes the generated code (delimiters,
whitespace handling, backslash escaping, the Jinja, Ansible and Python
versions), in one marshal file under ~/.cache/neurallog. A miss compiles as
usual. Only the worker process running the plan is changed; the cache is
written atomically and a damaged or foreign file is ignored."""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import tempfile

from ansible_collections.neurallog.platform.plugins.plugin_utils.cache_dir import cache_dir


def _cache_file():
    return os.path.join(cache_dir(), "plan", "jinja-code.marshal")


def _version_key():
    import jinja2
    from ansible import release
    return "%s|%s|%s" % (jinja2.__version__, release.__version__, sys.version)


class CompileCache:
    """See the module description. ``install()`` patches the Ansible Jinja
    environment class of this process; ``save()`` writes new entries."""

    def __init__(self, path=None):
        self.path = path or _cache_file()
        self.version = _version_key()
        self.codes = {}
        self.new = 0
        try:
            with open(self.path, "rb") as handle:
                data = marshal.load(handle)
            if isinstance(data, dict) and data.get("version") == self.version:
                self.codes = data.get("codes") or {}
        except (OSError, EOFError, ValueError, TypeError):
            self.codes = {}

    @staticmethod
    def _settings(env):
        from ansible._internal._templating._jinja_bits import _TemplateCompileContext
        context = _TemplateCompileContext.current(optional=True)
        return (type(env).__name__, env.block_start_string, env.block_end_string, env.variable_start_string,
                env.variable_end_string, env.comment_start_string, env.comment_end_string,
                env.line_statement_prefix, env.line_comment_prefix, env.trim_blocks, env.lstrip_blocks,
                env.newline_sequence, env.keep_trailing_newline, env.optimized,
                getattr(context, "escape_backslashes", None))

    def _key(self, kind, env, source, extra):
        text = repr((kind, self._settings(env), extra, source))
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def install(self):
        from ansible._internal._templating._jinja_bits import AnsibleEnvironment
        if getattr(AnsibleEnvironment, "_neurallog_compile_cache", None) is self:
            return
        cache = self
        compile_template = AnsibleEnvironment.compile

        def compile(env, source, name=None, filename=None, raw=False, defer_init=False):  # pylint: disable=redefined-builtin
            if raw or not isinstance(source, str) or env._debuggable_template_source:
                return compile_template(env, source, name, filename, raw, defer_init)
            key = cache._key("template", env, str(source), (name, filename, defer_init))
            code = cache.codes.get(key)
            if code is not None:
                try:
                    return marshal.loads(code)
                except (ValueError, EOFError, TypeError):
                    pass
            code = compile_template(env, source, name, filename, raw, defer_init)
            cache.codes[key] = marshal.dumps(code)
            cache.new += 1
            return code

        compile_expression = AnsibleEnvironment.compile_expression

        def expression(env, source, undefined_to_none=True):
            from jinja2.environment import TemplateExpression
            if env._debuggable_template_source:
                return compile_expression(env, source, undefined_to_none)
            key = cache._key("expression", env, str(source), undefined_to_none)
            code = cache.codes.get(key)
            if code is None:
                # what Jinja does, keeping the code object on the way
                from jinja2 import nodes
                from jinja2.parser import Parser
                parser = Parser(env, str(source), state="variable")
                try:
                    expr = parser.parse_expression()
                    if not parser.stream.eos:
                        from jinja2.exceptions import TemplateSyntaxError
                        raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno, None, None)
                    expr.set_environment(env)
                except Exception:  # pylint: disable=broad-exception-caught  # Jinja raises its own way
                    return compile_expression(env, source, undefined_to_none)
                body = [nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)]
                compiled = env.compile(nodes.Template(body, lineno=1))
                code = marshal.dumps(compiled)
                cache.codes[key] = code
                cache.new += 1
            template = env.template_class.from_code(env, marshal.loads(code), env.make_globals(None), None)
            return TemplateExpression(template, undefined_to_none)

        AnsibleEnvironment.compile = compile
        AnsibleEnvironment.compile_expression = expression
        AnsibleEnvironment._neurallog_compile_cache = self

    def save(self):
        if not self.new:
            return
        try:
            folder = os.path.dirname(self.path)
            os.makedirs(folder, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=folder, prefix=".jinja-code.")
            with os.fdopen(fd, "wb") as handle:
                marshal.dump({"version": self.version, "codes": self.codes}, handle)
            os.replace(temp, self.path)
        except OSError:
            pass  # a cache that cannot be written only costs time
