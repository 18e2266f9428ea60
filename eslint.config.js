// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {ignores: ['dist/', 'coverage/', 'node_modules/', 'examples/**/node_modules/', 'bench/work/']},
  eslint.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: {allowDefaultProject: ['*.js', 'bin/*.js', 'scripts/*.mjs']},
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', {allowNumber: true}],
      'no-console': 'error',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {globals: {process: 'readonly', console: 'readonly', URL: 'readonly'}},
    rules: {'no-console': 'off'},
  },
  {
    files: ['test/**/*.ts', 'examples/**/*.ts', 'scripts/**', 'bench/**/*.ts'],
    rules: {'no-console': 'off', '@typescript-eslint/no-non-null-assertion': 'off'},
  },
);
